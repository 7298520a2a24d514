"""account-public-access-block: all four Block Public Access settings of the account are on.

The account's settings apply on top of every bucket's and every access point's, so they are the
last guard when a bucket's own block is relaxed. They are read and written through S3 Control
(GetPublicAccessBlock / PutPublicAccessBlock with `AccountId`), which CloudTrail logs as
GetAccountPublicAccessBlock / PutAccountPublicAccessBlock with eventSource s3.amazonaws.com.
Judging and fixing is the bucket control's (public_access_block.py): all four on, always all four
written, no configuration at all is drift too.

The subject is the account id; the engine hands it to `read` and `apply` and reports it in the
outcome's `bucket` field with scope "account". An account has no tags, so no exemption tag can
reach this control (`exemption_bucket` is None, as for every non-bucket scope): only its mode
(notify or off) lets an account keep settings off.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bucketwarden.controls.public_access_block import PublicAccessBlockControl

if TYPE_CHECKING:
    from bucketwarden.events import CloudTrailRecord

# S3 Control's AccountId pattern; anything else (redacted "...", a short test id) names no account.
ACCOUNT_ID = re.compile(r"^\d{12}$")


def account_of(record: CloudTrailRecord) -> str | None:
    """The account the call changed: the trail's recipient, else the caller's own account."""
    for candidate in (record.recipientAccountId, record.userIdentity.accountId):
        if candidate and ACCOUNT_ID.match(str(candidate)):
            return str(candidate)
    return None


class AccountPublicAccessBlock(PublicAccessBlockControl):
    id = "account-public-access-block"
    fsbp = ("S3.1",)
    severity = "MEDIUM"
    family = "public-access"
    title = "Account Block Public Access is fully on"
    surface = "account Block Public Access configuration"
    trigger_events = ("PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock")
    read_actions = ("s3:GetAccountPublicAccessBlock",)
    write_actions = ("s3:PutAccountPublicAccessBlock",)
    scope = "account"
    service = "s3control"
    subject_parameter = "AccountId"
    closes_public_exposure = True

    def subject_account(self, subject: str) -> str | None:
        return subject  # the subject is the account id

    def subject(self, record: CloudTrailRecord) -> str | None:
        return account_of(record)
