"""replication-destination: a bucket replicates only to buckets of its own account, of the
organization (for an organization's hub) or of the accounts people allowed
(ReplicationAllowedAccounts).

A replication rule is the quietest way out of an account: whoever may write one copies every
new object to a bucket of their choosing, in any account. So each enabled rule's destination
is judged by the account that really owns it, learnt without trusting what the bucket owner
wrote:
- `Destination.Account` counts only with the owner override (`AccessControlTranslation`), the
  one case where S3 itself checks that the destination bucket belongs to that account;
- otherwise the destination is read with `ExpectedBucketOwner` set to the bucket's own account
  (GetBucketVersioning: a destination must be versioned anyway): S3 answers AccessDenied when
  another account owns it, which is then "an unknown account" (the one the rule names, if any,
  is only a claim).
The organization's accounts come from Organizations (ListAccounts, with the hub's credentials,
kept an hour); when they cannot be learnt the finding says so: never compliant on a guess.

Detect only: stopping replication could lose data people rely on. The state is
GetBucketReplication's answer (None when there is none) plus what was learnt: `Account` (the
bucket's own), `DestinationOwners` (per destination bucket) and `Organization`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code, is_access_denied
from bucketwarden.controls.base import Evaluation, RecordReader, State
from bucketwarden.controls.detect_only import DetectOnly, configuration_or_none
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NO_CONFIGURATION = "ReplicationConfigurationNotFoundError"
ACCOUNT = "Account"
OWNERS = "DestinationOwners"
ORGANIZATION = "Organization"
ALLOWLIST = "ReplicationAllowedAccounts"


class Destination(NamedTuple):
    """One enabled rule's destination: its rule, bucket name and the account the rule names."""

    rule: str
    bucket: str
    named: str | None
    owner_override: bool


def destinations(state: State) -> list[Destination]:
    """The destinations of the enabled rules, in the configuration's order."""
    rules = ((state or {}).get("ReplicationConfiguration") or {}).get("Rules") or []
    found = []
    for index, rule in enumerate(rules, start=1):
        if rule.get("Status") != "Enabled":
            continue  # a disabled rule copies nothing; enabling it is another event
        target = rule.get("Destination") or {}
        override = (target.get("AccessControlTranslation") or {}).get("Owner") == "Destination"
        name = repr(str(rule["ID"])) if rule.get("ID") else f"#{index}"
        bucket = str(target.get("Bucket", "")).rsplit(":", 1)[-1]
        found.append(Destination(name, bucket, target.get("Account"), override))
    return found


def own_account(settings: Settings) -> str:
    """The bucket's account: the settings' (the stack's, or the member's being judged), else
    the caller's (the CLI outside a stack)."""
    if settings.account_id:
        return settings.account_id
    return str(client("sts").get_caller_identity()["Account"])


def destination_owner(s3: Any, destination: Destination, own: str) -> dict[str, Any]:
    """Who owns the destination bucket, as far as S3 says: {"account": id or None, "how": ...}."""
    if destination.owner_override and destination.named:
        how = "named by the rule with the owner override, which S3 verifies"
        return {"account": destination.named, "how": how}
    try:
        s3.get_bucket_versioning(Bucket=destination.bucket, ExpectedBucketOwner=own)
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return {"account": None, "how": "the bucket does not exist: whoever creates it"}
        if not is_access_denied(error):
            raise
        claim = f" (the rule names {destination.named}, unverified)" if destination.named else ""
        return {"account": None, "how": f"not owned by {own}{claim}"}
    return {"account": own, "how": f"owned by {own} (read with ExpectedBucketOwner)"}


class ReplicationDestination(DetectOnly["S3Client"]):
    id = "replication-destination"
    severity = "HIGH"
    family = "data-management"
    title = "Buckets replicate only to accounts of the organization or the allowlist"
    surface = "replication configuration"
    trigger_events = ("PutBucketReplication",)
    read_actions = ("s3:GetReplicationConfiguration", "s3:GetBucketVersioning")
    derived_keys = (ACCOUNT, OWNERS, ORGANIZATION)

    def read(self, s3: S3Client, bucket: str) -> State:
        return configuration_or_none(
            lambda: s3.get_bucket_replication(Bucket=bucket), NO_CONFIGURATION
        )

    def observe(
        self, s3: S3Client, bucket: str, settings: Settings, records: RecordReader | None = None
    ) -> State:
        configuration = self.read(s3, bucket)
        found = destinations(configuration)
        if not found:
            return configuration
        own = own_account(settings)
        owners = {d.bucket: destination_owner(s3, d, own) for d in found}
        state = {**(configuration or {}), ACCOUNT: own, OWNERS: owners}
        outside = {o["account"] for o in owners.values()} - {None, own}
        outside -= set(settings.replication_allowed_accounts)
        if outside and settings.organization_id:
            state[ORGANIZATION] = organization_view(settings.organization_id, outside)
        return state

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        found = destinations(state)
        if not found:
            return Evaluation(True, "no enabled replication rule")
        problems = [p for d in found if (p := self._problem(d, state or {}, settings))]
        if problems:
            return Evaluation(False, "; ".join(problems), fixable=False)
        where = ", ".join(sorted({d.bucket for d in found}))
        return Evaluation(True, f"replicates only to allowed accounts' buckets ({where})")

    @staticmethod
    def _problem(destination: Destination, state: dict[str, Any], settings: Settings) -> str | None:
        owner = (state.get(OWNERS) or {}).get(destination.bucket) or {}
        account = owner.get("account")
        copies = f"rule {destination.rule} replicates every new object to bucket "
        copies += destination.bucket
        if account is None:
            return f"{copies} in an unknown account ({owner.get('how', 'not checked')})"
        if account == state.get(ACCOUNT) or account in settings.replication_allowed_accounts:
            return None
        organization = state.get(ORGANIZATION) or {}
        if organization.get("problem"):
            why = organization["problem"]
            return f"{copies} of account {account}, which could not be checked: {why}"
        if account in (organization.get("members") or []):
            return None
        outside = "outside the organization and" if settings.organization_id else "not in"
        return f"{copies} of account {account}, {outside} the allowlist ({ALLOWLIST})"

    def describe(self, state: State) -> str:
        found = destinations(state)
        if not found:
            return "no replication"
        owners = (state or {}).get(OWNERS) or {}
        named = [
            f"{d.bucket} (account {(owners.get(d.bucket) or {}).get('account') or 'unknown'})"
            for d in found
        ]
        return "replicates to " + ", ".join(dict.fromkeys(named))


def organization_view(organization_id: str, accounts: set[str]) -> dict[str, Any]:
    """Which of `accounts` are the organization's, or the problem that kept it from being told
    (the hub's cached ListAccounts)."""
    from bucketwarden import services  # the hub's cache, kept for the function instance

    membership = services.organization_members(organization_id).accounts()
    if membership.problem:
        return {"problem": membership.problem}
    return {"members": sorted(accounts & membership.accounts)}
