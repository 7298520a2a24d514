"""`bucketwarden demo`: a scripted scenario on the local system, through real client calls.

It starts `bucketwarden local` on a free port, then plays a person opening buckets up with boto3
against the endpoint, as they would in a real account, waits for the service to react, and
prints drift → outcome → notification with the drift-to-fix latency per control.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bucketwarden.controls.public_access_block import SETTINGS
from bucketwarden_tools.environment import temporary_environment
from bucketwarden_tools.local.organization import AssumedSession, Organization
from bucketwarden_tools.local.system import REGION, LocalSystem
from bucketwarden_tools.report import STATUS_STYLES, change

USER_ACCESS_KEY = "AKIADEMOALICE"
ACCOUNT = "123456789012"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"

# A person's step: (their client of the scenario's service, the scenario's subject).
Step = Callable[[Any, str], Any]


@dataclass
class Scenario:
    title: str
    subject: str  # the bucket; the account for account-level drift
    drift: Step
    prepare: Step | None = None  # the bucket's past: done and settled before the drift
    new_bucket: bool = True  # False: the drift creates the bucket, or concerns the account
    service: str = "s3"  # the client the person drifts with
    environment: dict[str, str] = field(default_factory=dict)
    # A member account of the organization (--accounts) the person acts in; None: the hub's.
    account: str | None = None


def _exempt(s3: Any, bucket: str, controls: str, reason: str) -> None:
    tags = [
        {"Key": "bucketwarden:exempt", "Value": controls},
        {"Key": "bucketwarden:exempt-reason", "Value": reason},
        # Within MaxExemptionDays (365 by default): an end date further away is not honoured.
        {
            "Key": "bucketwarden:exempt-until",
            "Value": (date.today() + timedelta(days=90)).isoformat(),
        },
    ]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})


def _allow_acls(s3: Any, bucket: str) -> None:
    """What a person must undo before S3 accepts a public ACL on a new bucket."""
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )


def _website_with_acls(s3: Any, bucket: str) -> None:
    """A bucket whose Block Public Access is off and ACLs on by design, exempted saying why.

    Without the exemption the service turns Block Public Access back on and disables ACLs at
    once, and S3 then refuses every ACL grant itself. The exemption covers those two controls
    only: public-acl still guards the ACL, which is what the ACL scenarios show.
    """
    _exempt(s3, bucket, "bucket-public-access-block+object-ownership", "legacy website on ACLs")
    _allow_acls(s3, bucket)


def _relax_block_public_access(s3: Any, bucket: str) -> None:
    """Policy settings off, as someone about to attach a public bucket policy does."""
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )


def _website_with_policy(s3: Any, bucket: str) -> None:
    """A bucket served by its policy: policy settings off, exempted from Block Public Access.

    public-policy and secure-transport still guard the policy itself.
    """
    _exempt(s3, bucket, "bucket-public-access-block", "website served by its bucket policy")
    _relax_block_public_access(s3, bucket)


def _public_policy_with_cloudfront(s3: Any, bucket: str) -> None:
    """A policy for everyone beside CloudFront's origin access; it replaces the TLS rule."""
    objects = f"arn:aws:s3:::{bucket}/*"
    distribution = f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDFDVBD6EXAMPLE"
    statements: list[dict[str, Any]] = [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*"},
        {
            "Sid": "CloudFrontRead",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceArn": distribution}},
        },
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{**s, "Action": "s3:GetObject", "Resource": objects} for s in statements],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _account_block_public_access_off(s3control: Any, account: str) -> None:
    s3control.put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=dict.fromkeys(SETTINGS, False)
    )


def _open_acl_keeping_log_delivery(s3: Any, bucket: str) -> None:
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    grants = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "WRITE"},
        {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "READ_ACP"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
    ]
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": owner, "Grants": grants})


def _grant_authenticated_users(s3: Any, bucket: str) -> None:
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    s3.put_bucket_acl(
        Bucket=bucket, GrantRead=f"uri={AUTHENTICATED_USERS}", GrantFullControl=f"id={owner}"
    )


def _exempt_public_acl(s3: Any, bucket: str) -> None:
    # "+" separates control ids: S3 tag values do not allow commas.
    controls = "bucket-public-access-block+object-ownership+public-acl"
    _exempt(s3, bucket, controls, "public website assets")
    _allow_acls(s3, bucket)


def _suspend_versioning(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def _sse_kms_with(key_id: str) -> Step:
    def put(s3: Any, bucket: str) -> None:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
            },
        )

    return put


def scenarios(unapproved_key: str) -> list[Scenario]:
    return [
        Scenario("new bucket: S3's defaults, no versioning, no TLS rule", "demo-new-bucket",
                 lambda s3, b: s3.create_bucket(Bucket=b), new_bucket=False),
        Scenario("Block Public Access relaxed for a public bucket policy", "demo-block-public",
                 _relax_block_public_access),
        Scenario("bucket policy made public (CloudFront access must stay)", "demo-public-policy",
                 _public_policy_with_cloudfront, prepare=_website_with_policy),
        Scenario("ACL opened to everyone (log delivery must stay)", "demo-public-acl",
                 _open_acl_keeping_log_delivery, prepare=_website_with_acls),
        Scenario("ACL opened to any AWS account", "demo-authenticated-acl",
                 _grant_authenticated_users, prepare=_website_with_acls),
        Scenario("default encryption switched to an unapproved KMS key", "demo-encryption",
                 _sse_kms_with(unapproved_key)),
        Scenario("default encryption deleted (S3 falls back to SSE-S3)", "demo-encryption-deleted",
                 lambda s3, b: s3.delete_bucket_encryption(Bucket=b)),
        Scenario("versioning suspended", "demo-versioning", _suspend_versioning),
        Scenario("exempted bucket made public", "demo-exempt-website",
                 lambda s3, b: s3.put_bucket_acl(Bucket=b, ACL="public-read"),
                 prepare=_exempt_public_acl),
        Scenario("account Block Public Access turned off", ACCOUNT,
                 _account_block_public_access_off, new_bucket=False, service="s3control"),
        Scenario("versioning suspended, control in notify mode", "demo-notify-only",
                 _suspend_versioning, environment={"MODE_VERSIONING": "notify"}),
    ]  # fmt: skip


def organization_scenarios(organization: Organization | None) -> list[Scenario]:
    """With --accounts: the same drift in the hub's account and in each member's, every one
    fixed by the hub's functions (in a member, with its member role)."""
    if organization is None:
        return []
    return [
        Scenario(
            "versioning suspended, in one account of the organization",
            f"bucketwarden-demo-org-{account}",
            _suspend_versioning,
            account=None if account == organization.hub else account,
        )
        for account in organization.accounts
    ]


class Recorder:
    """Collects what the local system reports, by bucket, while the scenario plays."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, item: dict[str, Any]) -> None:
        with self._lock:
            self.items.append(item)

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            items, self.items = self.items, []
        return items


def _settle(system: LocalSystem, recorder: Recorder) -> None:
    if not system.wait_until_idle(timeout=30):
        raise RuntimeError("the local system did not settle within 30 s")
    recorder.take()


def _person(system: LocalSystem, service: str, account: str | None) -> Any:
    """The person's client: in the hub's account, or in a member's with the role the local
    organization gives people there (as `aws sts assume-role` gets it)."""
    if account is None or system.organization is None:
        return system.client(service, access_key=USER_ACCESS_KEY)
    sts = system.client("sts", access_key=USER_ACCESS_KEY)
    role = system.organization.user_role_arn(account)
    return AssumedSession(sts, role, "alice", system.endpoint, REGION).client(service)


def _play(system: LocalSystem, recorder: Recorder, scenario: Scenario) -> list[dict]:
    if scenario.new_bucket:
        s3 = _person(system, "s3", scenario.account)
        s3.create_bucket(Bucket=scenario.subject)
        if scenario.prepare:
            scenario.prepare(s3, scenario.subject)
    _settle(system, recorder)  # the bucket's past is not the drift shown
    person = _person(system, scenario.service, scenario.account)
    with temporary_environment(scenario.environment):
        scenario.drift(person, scenario.subject)
        system.wait_until_idle(timeout=30)
        system.wait_for_notifications()
    items = recorder.take()
    return [{**item, "scenario": scenario.title} for item in items]


def _approved_key(system: LocalSystem) -> tuple[str, str]:
    kms = system.client("kms")
    approved = kms.create_key(Description="bucketwarden demo: approved")["KeyMetadata"]["Arn"]
    other = kms.create_key(Description="bucketwarden demo: not approved")["KeyMetadata"]["Arn"]
    return approved, other


def run_scenario(
    system: LocalSystem, recorder: Recorder, say: Callable[[str], None] = lambda text: None
) -> list[dict[str, Any]]:
    approved, unapproved = _approved_key(system)
    say(baseline_note(approved))
    os.environ.update({"ENCRYPTION_BASELINE": "SSE-KMS", "APPROVED_KMS_KEYS": approved})
    items: list[dict[str, Any]] = []
    for scenario in scenarios(unapproved) + organization_scenarios(system.organization):
        items += _play(system, recorder, scenario)
    return items


def _notifications_by_audit_id(items: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(item["message"].get("audit_id")): str(item.get("subject"))
        for item in items
        if item.get("kind") == "notification"
    }


def _table(items: list[dict[str, Any]], organization: bool = False) -> Table:
    subjects = _notifications_by_audit_id(items)
    table = Table(
        title="BucketWarden demo on the local system: drift → outcome → notification",
        show_lines=True,
    )
    for column in (
        "drift",
        "event",
        "control",
        "outcome",
        "before → after",
        "latency",
        "notification",
    ):
        table.add_column(column, overflow="fold")
    for item in items:
        if item.get("kind") != "outcome" or item.get("control") is None:
            continue
        status = str(item["status"])
        latency = f"{item['latency_ms']} ms" if item.get("latency_ms") is not None else "-"
        where = f" in account {item['account']}" if organization and item.get("account") else ""
        table.add_row(
            f"{item['scenario']}\n[dim]{item.get('bucket')}{where}[/]",
            str(item.get("event_name")),
            str(item.get("control")),
            f"[{STATUS_STYLES.get(status, '')}]{status}[/]\n[dim]{item.get('reason', '')}[/]",
            change(item),
            latency,
            subjects.get(str(item.get("audit_id")), "-") if item.get("notified") else "-",
        )  # fmt: skip
    return table


# Fewer fixes than this per control are listed one by one: a median of two says little.
MEDIAN_FROM = 3


def _latency_summary(items: list[dict[str, Any]]) -> str:
    latencies: dict[str, list[int]] = defaultdict(list)
    for item in items:
        if item.get("kind") == "outcome" and item.get("status") == "remediated":
            latencies[str(item["control"])].append(int(item["latency_ms"]))
    parts = [_latencies(control, values) for control, values in sorted(latencies.items())]
    return "drift → fix: " + ("; ".join(parts) if parts else "nothing was remediated")


def _latencies(control: str, values: list[int]) -> str:
    if len(values) < MEDIAN_FROM:
        return f"{control} {', '.join(str(value) for value in values)} ms"
    spread = f"n={len(values)}, {min(values)}-{max(values)} ms"
    return f"{control} median {statistics.median(values):.0f} ms ({spread})"


def baseline_note(approved_key: str) -> str:
    """What the demo changes from the stack's defaults, said before it starts."""
    return (
        "The demo sets the encryption baseline to SSE-KMS with one approved key "
        f"(ENCRYPTION_BASELINE=SSE-KMS, APPROVED_KMS_KEYS={approved_key}), to show a bucket "
        "switched to a key that is not approved; the stack's default baseline is SSE-S3."
    )


def _organization_summary(items: list[dict[str, Any]], organization: Organization) -> str:
    fixed = sorted(
        {
            str(item.get("account"))
            for item in items
            if item.get("kind") == "outcome" and item.get("status") == "remediated"
        }
    )
    return (
        f"one hub (account {organization.hub}) fixed drift in {len(fixed)} of the "
        f"organization's {len(organization.accounts)} accounts: {', '.join(fixed)}"
    )


def run_demo(
    console: Console, as_json: bool = False, template: Path | None = None, accounts: int = 1
) -> int:
    recorder = Recorder()
    kwargs: dict[str, Any] = {"template": template} if template else {}
    system = LocalSystem(port=0, report=recorder, accounts=accounts, **kwargs)
    console.print("[dim]starting the local system (emulated AWS, CloudTrail, EventBridge, "
                  "functions)...[/]")  # fmt: skip
    system.start()
    try:
        say = (lambda text: None) if as_json else (lambda text: console.print(text, style="dim"))
        items = run_scenario(system, recorder, say)
    finally:
        system.stop()
    if as_json:
        for item in items:
            sys.stdout.write(json.dumps(item, sort_keys=True, default=str) + "\n")
        return 0
    console.print(_table(items, organization=system.organization is not None))
    outcomes = [i for i in items if i.get("kind") == "outcome" and i.get("control")]
    counts = Counter(str(o["status"]) for o in outcomes)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    notified = sum(1 for i in items if i.get("kind") == "notification")
    drifts = len(scenarios("")) + len(organization_scenarios(system.organization))
    console.print(f"{drifts} drifts, {len(outcomes)} outcomes: {summary}")
    console.print(f"{notified} notifications reached the subscribed queue.")
    console.print(_latency_summary(items))
    if system.organization is not None:
        console.print(_organization_summary(items, system.organization))
    return 0
