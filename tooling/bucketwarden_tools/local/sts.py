"""What STS does and the emulator does not: AssumeRole of a role that does not exist is refused,
and GetCallerIdentity names a user's key as the events do.

moto hands out credentials for any role ARN, in any account. AWS answers AccessDenied when the
role is missing (or does not trust the caller, which the emulator does not judge): the local
organization's callers, and `bucketwarden rollback` in a member account, meet that refusal as
they would in AWS. The emulator's own key (the local system setting the organization up) is
not refused.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

_STS_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/sts/aws4_request")
_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)$"
)


def is_sts_request(environ: dict[str, Any]) -> bool:
    """A signed STS call (its body, not read yet, names the action)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    return environ.get("REQUEST_METHOD") == "POST" and bool(_STS_SCOPE.search(authorization))


def assume_role_refusal(body: bytes) -> bytes | None:
    """STS's AccessDenied answer to an AssumeRole of a role that does not exist; None for
    anything else."""
    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("Action") != ["AssumeRole"]:
        return None
    arn = (form.get("RoleArn") or [""])[0]
    if _role_exists(arn):
        return None
    message = f"Not authorized to perform sts:AssumeRole on resource {arn}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
        f"<Code>AccessDenied</Code><Message>{_escape(message)}</Message></Error>"
        "<RequestId>bucketwarden-local</RequestId></ErrorResponse>"
    ).encode()


def caller_identity_answer(body: bytes, arn: str, user_id: str, account: str) -> bytes | None:
    """STS's answer to GetCallerIdentity naming `arn` (the identity the emulated CloudTrail
    gives the caller's key, so that `bucketwarden rollback` and the events name one caller
    alike; moto would answer `user/moto` for every key); None for any other action."""
    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("Action") != ["GetCallerIdentity"]:
        return None
    return (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<GetCallerIdentityResult><Arn>{_escape(arn)}</Arn><UserId>{_escape(user_id)}</UserId>"
        f"<Account>{_escape(account)}</Account></GetCallerIdentityResult>"
        "<ResponseMetadata><RequestId>bucketwarden-local</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()


def _role_exists(arn: str) -> bool:
    from moto.iam.models import iam_backends

    match = _ROLE_ARN.match(arn)
    if match is None:
        return False
    backend = iam_backends[match["account"]][match["partition"]]
    return any(role.arn == arn for role in list(backend.roles.values()))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
