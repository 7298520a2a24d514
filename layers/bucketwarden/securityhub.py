"""Findings in AWS Security Hub: each outcome worth a finding becomes one in the AWS Security
Finding Format (ASFF), imported with BatchImportFindings in the account that owns the subject.

One finding per account, region, control and subject (its `Id`), so that a drift, its fix, an
exemption and a deletion update the same finding instead of adding new ones:

| outcome | Compliance.Status | RecordState | Workflow.Status (BatchUpdateFindings) |
|---|---|---|---|
| noncompliant, failed | FAILED | ACTIVE | NEW again, if BucketWarden had suppressed it |
| remediated | PASSED | ACTIVE | RESOLVED |
| compliant (the sweep), where a FAILED finding exists | PASSED | ACTIVE | RESOLVED |
| exempted | FAILED | ACTIVE | SUPPRESSED, the exemption's reason and end date in its Note |
| skipped: subject gone, where a finding exists | NOT_AVAILABLE | ARCHIVED | (Security Hub's) |

A finding provider cannot set `Workflow` or `Note` with BatchImportFindings once a finding
exists (AWS: BatchImportFindings API reference); BatchUpdateFindings can, in the finding's own
account. Security Hub resolves its own control findings when they pass, not a provider's.

Security Hub not enabled in an account and region (InvalidAccessException), or refusing the
caller (AccessDenied), is a warning logged once per account and region for the function
instance, and that account and region get no further call for an hour: never a failure, never a
retry storm. Findings Security Hub refuses (FailedFindings) are logged and counted.
See docs/security-hub.md.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from bucketwarden.accounts import MemberRoleUnavailable
from bucketwarden.aws import GONE_CODES, error_code, error_message
from bucketwarden.catalogue import control as control_of
from bucketwarden.controls.base import Control
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.settings import Settings

logger = Logger(service="bucketwarden", child=True)

SCHEMA_VERSION = "2018-10-08"
# BatchImportFindings takes at most 100 findings a request, BatchUpdateFindings 100 identifiers.
BATCH_SIZE = 100
# Values of one GetFindings filter asked at once (kept small: one request, a short URL-free body).
FILTER_VALUES = 20
GENERATOR_PREFIX = "bucketwarden/"
# Who a Note set by BatchUpdateFindings says wrote it: only a suppression of BucketWarden's own
# is lifted by BucketWarden (a person's stays as they left it).
NOTE_AUTHOR = "BucketWarden"
FSBP_STANDARD = "standards/aws-foundational-security-best-practices/v/1.0.0"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
FSBP_TYPE = (
    "Software and Configuration Checks/Industry and Regulatory Standards/"
    "AWS-Foundational-Security-Best-Practices"
)
# ASFF resource types by control scope; any other scope is "Other", as ASFF asks.
RESOURCE_TYPES = {
    "bucket": "AwsS3Bucket",
    "account": "AwsAccount",
    "access-point": "AwsS3AccessPoint",
}
# ASFF's length limits on the text fields written here.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 1024
RECOMMENDATION_LIMIT = 512
NOTE_LIMIT = 512
# Security Hub not enabled (not subscribed) in the account and region, or the caller refused.
UNAVAILABLE_CODES = frozenset(
    {"InvalidAccessException", "AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
)
# How long an account and region that answered so get no call from this function instance.
QUIET_PERIOD = timedelta(hours=1)
# The engine's reason for a subject deleted meanwhile (context.classify, Sweep.gone).
GONE_REASONS = frozenset(f"{what} no longer exists" for what in GONE_CODES.values())

# A Security Hub client acting in an account and region (AccountAccess.client, aws.client).
ClientFor = Callable[[str | None, str | None], Any]


@dataclass(frozen=True)
class Place:
    """Where a finding is imported: the subject's account and region, and their partition."""

    account: str
    region: str
    partition: str

    @property
    def product_arn(self) -> str:
        """The default product of the account: findings a customer imports for itself."""
        return (
            f"arn:{self.partition}:securityhub:{self.region}:{self.account}:"
            f"product/{self.account}/default"
        )


@dataclass
class Planned:
    """One finding to import, and what BatchUpdateFindings sets on it afterwards."""

    outcome: Outcome
    control: Control[Any]
    compliance: str
    record_state: str = "ACTIVE"
    workflow: str | None = None
    note: str | None = None
    # Imported only where the finding exists already (an archive, a reconciled pass).
    only_if_found: bool = False
    # A drift: the finding is opened again if BucketWarden's exemption had suppressed it.
    reopen: bool = False
    created_at: str | None = None


def finding_id(place: Place, control_id: str, subject: str) -> str:
    """The finding's stable Id: one per account, region, control and subject."""
    return f"bucketwarden/{place.account}/{place.region}/{control_id}/{subject}"


def plan(outcome: Outcome, control: Control[Any], *, compliant_passes: bool) -> Planned | None:
    """What the outcome makes of its finding (see the module's table); None: nothing.
    `compliant_passes`: a compliant outcome passes an existing finding (the sweep's reconcile)."""
    status = outcome.status
    if status in {Status.NONCOMPLIANT, Status.FAILED}:
        return Planned(outcome, control, "FAILED", reopen=True)
    if status is Status.REMEDIATED:
        return Planned(
            outcome, control, "PASSED", workflow="RESOLVED", note="fixed by BucketWarden"
        )
    if status is Status.EXEMPTED:
        return Planned(outcome, control, "FAILED", workflow="SUPPRESSED", note=outcome.reason)
    if status is Status.SKIPPED and outcome.reason in GONE_REASONS:
        return Planned(
            outcome, control, "NOT_AVAILABLE", record_state="ARCHIVED", only_if_found=True
        )
    if status is Status.COMPLIANT and compliant_passes:
        return Planned(
            outcome,
            control,
            "PASSED",
            workflow="RESOLVED",
            note="compliant again (BucketWarden sweep)",
            only_if_found=True,
        )
    return None


def asff(planned: Planned, place: Place, settings: Settings, now: str) -> dict[str, Any]:
    """The finding in ASFF: every required attribute, severity and types through
    FindingProviderFields (a provider's way to update them), the resource, the remediation."""
    outcome, control = planned.outcome, planned.control
    subject = str(outcome.bucket)
    types = [FINDING_TYPE, *([FSBP_TYPE] if control.fsbp else [])]
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(place, control.id, subject),
        "ProductArn": place.product_arn,
        "GeneratorId": f"{GENERATOR_PREFIX}{control.id}",
        "AwsAccountId": place.account,
        "Types": types,
        "CreatedAt": planned.created_at or outcome.event_time or now,
        "UpdatedAt": now,
        "Severity": {"Label": control.severity},
        "FindingProviderFields": {"Severity": {"Label": control.severity}, "Types": types},
        "Title": _cut(f"{control.title}: {subject}", TITLE_LIMIT),
        "Description": _cut(outcome.reason or control.title, DESCRIPTION_LIMIT),
        "Resources": [_resource(control, subject, place)],
        "Compliance": _compliance(control, planned.compliance),
        "RecordState": planned.record_state,
        "Remediation": {"Recommendation": {"Text": _recommendation(outcome, control, settings)}},
        "ProductFields": _product_fields(outcome),
        "ProductName": "BucketWarden",
        "CompanyName": "BucketWarden",
    }
    return finding


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resource(control: Control[Any], subject: str, place: Place) -> dict[str, Any]:
    kind = RESOURCE_TYPES.get(control.scope, "Other")
    if kind == "AwsS3Bucket":
        resource_id = f"arn:{place.partition}:s3:::{subject}"
    elif kind == "AwsAccount":
        resource_id = f"AWS::::Account:{subject}"
    else:  # an access point's subject is its ARN already
        resource_id = subject
    return {"Type": kind, "Id": resource_id, "Partition": place.partition, "Region": place.region}


def _compliance(control: Control[Any], status: str) -> dict[str, Any]:
    """The FSBP control it matches (the first, when it checks several), the others related."""
    compliance: dict[str, Any] = {"Status": status}
    if control.fsbp:
        compliance["SecurityControlId"] = control.fsbp[0]
        compliance["AssociatedStandards"] = [{"StandardsId": FSBP_STANDARD}]
        compliance["RelatedRequirements"] = list(control.fsbp)
    return compliance


def _recommendation(outcome: Outcome, control: Control[Any], settings: Settings) -> str:
    """What BucketWarden did or would do, how to exempt the subject, how to undo a fix."""
    if outcome.status is Status.REMEDIATED:
        done = f"BucketWarden fixed it ({control.title.lower()})."
        if outcome.audit_id:
            done += f" Undo: bucketwarden rollback {outcome.audit_id}"
    elif outcome.status is Status.EXEMPTED:
        done = (
            "Exempted: BucketWarden reports this drift and fixes it only once the exemption ends."
        )
    elif outcome.mode == "remediate":
        done = (
            f"BucketWarden could not fix it: {control.title.lower()} is expected; fix it by hand."
        )
    else:
        done = (
            f"BucketWarden detects only ({outcome.mode} mode): {control.title.lower()} is expected."
        )
    exempt = (
        f" To exempt: tag the bucket {settings.exempt_tag_key}={control.id}, "
        f"{settings.exempt_reason_key}=<why>, {settings.exempt_until_key}=<YYYY-MM-DD>."
    )
    text = done + (exempt if control.scope == "bucket" else "")
    return _cut(text, RECOMMENDATION_LIMIT)


def _product_fields(outcome: Outcome) -> dict[str, str]:
    fields = {
        "bucketwarden/status": outcome.status.value,
        "bucketwarden/mode": outcome.mode,
        "bucketwarden/audit_id": outcome.audit_id,
        "bucketwarden/event_id": outcome.event_id,
        "bucketwarden/event_name": outcome.event_name,
        "bucketwarden/actor": outcome.actor,
        "bucketwarden/found_by": outcome.found_by,
    }
    return {key: _cut(str(value), 2048) for key, value in fields.items() if value}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Accounts and regions that answered "not enabled" or "denied", until when they get no call:
# shared by the function instance's exporters (a handler builds one per event).
_quiet: dict[tuple[str, str], datetime] = {}
_quiet_lock = threading.Lock()


def forget() -> None:
    """Forget the accounts and regions kept quiet (tests; a new function instance)."""
    with _quiet_lock:
        _quiet.clear()


class FindingsExporter:
    """Imports the findings of outcomes into Security Hub, by account and region.

    `add` queues an outcome; `flush` imports what is queued (batches of BATCH_SIZE), sets the
    workflow of what needs it, and, with `reconcile`, passes the FAILED findings of BucketWarden
    whose subject was found compliant. The event path flushes each outcome (`export`); the sweep
    queues and flushes once per invocation. `calls` counts the Security Hub calls made.
    """

    def __init__(
        self,
        settings: Settings,
        client_for: ClientFor,
        metrics: Metrics | None = None,
        *,
        reconcile: bool = False,
        account_of: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.client_for = client_for
        self.metrics = metrics
        self.reconcile = reconcile
        self._account_of = account_of
        self._own_account: str | None = None
        self._lock = threading.Lock()
        self._queued: dict[tuple[str, str], list[Planned]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)
        self.failed = 0

    # -- queueing -----------------------------------------------------------------------------

    def export(self, outcome: Outcome) -> None:
        """Import the outcome's finding now (the event path)."""
        self.add(outcome)
        self.flush()

    def add(self, outcome: Outcome) -> None:
        """Queue the outcome's finding, if it makes one."""
        control = _control(outcome.control)
        if control is None or not outcome.bucket:
            return
        planned = plan(outcome, control, compliant_passes=self.reconcile)
        if planned is None:
            return
        key = (self._account(outcome), self._region(outcome))
        with self._lock:
            self._queued[key].append(planned)

    def _account(self, outcome: Outcome) -> str:
        """The subject's account: the outcome's, else the stack's, else the caller's (asked of
        STS once, outside a stack)."""
        account = outcome.account or self.settings.account_id or self._own_account
        if account is None and self._account_of is not None:
            account = self._own_account = self._account_of()
        return str(account)

    def _region(self, outcome: Outcome) -> str:
        return str(outcome.region or self.settings.region or _default_region())

    # -- importing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Import everything queued, account by account (never raises: see the module)."""
        with self._lock:
            queued, self._queued = dict(self._queued), defaultdict(list)
        for (account, region), planned in queued.items():
            if self._is_quiet(account, region):
                continue
            try:
                self._flush_place(account, region, planned)
            except (ClientError, BotoCoreError, MemberRoleUnavailable) as error:
                self._unavailable(account, region, error, planned)

    def _flush_place(self, account: str, region: str, planned: list[Planned]) -> None:
        api = self.client_for(account, region)
        place = Place(account, region, str(api.meta.partition))
        now = utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        passes = [p for p in planned if p.outcome.status is Status.COMPLIANT]
        archives = [
            p for p in planned if p.only_if_found and p.outcome.status is not Status.COMPLIANT
        ]
        # A pass needs a FAILED finding to pass; an archive, any finding to archive. The sweep
        # reads all of BucketWarden's FAILED findings at once (a drift's reopening uses them too).
        found = self._existing(api, place, [self._id(p, place) for p in archives])
        reopens = any(p.reopen for p in planned)
        failed = self._failed_findings(api, place) if self.reconcile and (passes or reopens) else {}
        kept: list[Planned] = []
        for item in planned:
            passing = item.outcome.status is Status.COMPLIANT
            existing = (failed if passing else found).get(self._id(item, place))
            if item.only_if_found and existing is None:
                continue
            if existing is not None:
                item.created_at = existing.get("CreatedAt")
            kept.append(item)
        imported = self._import(api, place, kept, now)
        self._set_workflows(api, place, [p for p in kept if self._id(p, place) in imported])
        reopening = [p for p in kept if p.reopen and self._id(p, place) in imported]
        self._reopen(api, place, reopening, failed if self.reconcile else None)

    @staticmethod
    def _id(planned: Planned, place: Place) -> str:
        return finding_id(place, planned.control.id, str(planned.outcome.bucket))

    def _import(self, api: Any, place: Place, planned: list[Planned], now: str) -> set[str]:
        """BatchImportFindings in batches; the Ids Security Hub took. Refused ones are logged,
        counted (SecurityHubFailedFindings) and said in their outcome's warnings."""
        by_id = {self._id(p, place): p for p in planned}
        findings = [asff(p, place, self.settings, now) for p in by_id.values()]
        taken: set[str] = set()
        for batch in _chunks(findings, BATCH_SIZE):
            self.calls["BatchImportFindings"] += 1
            answer = api.batch_import_findings(Findings=batch)
            refused = {f["Id"]: f for f in answer.get("FailedFindings", [])}
            taken.update(f["Id"] for f in batch if f["Id"] not in refused)
            for finding_id_, failure in refused.items():
                self._refused(by_id.get(finding_id_), finding_id_, failure)
        return taken

    def _refused(self, planned: Planned | None, finding_id_: str, failure: dict[str, Any]) -> None:
        self.failed += 1
        why = f"{failure.get('ErrorCode', 'error')}: {failure.get('ErrorMessage', 'no message')}"
        logger.warning("Security Hub refused a finding", extra={"id": finding_id_, "error": why})
        control = planned.control.id if planned else "none"
        if self.metrics is not None:
            self.metrics.emit("SecurityHubFailedFindings", control)
        if planned is not None:
            planned.outcome.warnings.append(f"Security Hub refused its finding ({why})")

    def _set_workflows(self, api: Any, place: Place, planned: list[Planned]) -> None:
        """Workflow and Note through BatchUpdateFindings, grouped by what they set."""
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for item in planned:
            if item.workflow:
                note = _cut(item.note or item.workflow.lower(), NOTE_LIMIT)
                groups[(item.workflow, note)].append(self._id(item, place))
        for (status, note), ids in groups.items():
            self._update_workflow(api, place, ids, status, note)

    def _update_workflow(
        self, api: Any, place: Place, ids: list[str], status: str, note: str
    ) -> None:
        for batch in _chunks(ids, BATCH_SIZE):
            self.calls["BatchUpdateFindings"] += 1
            try:
                answer = api.batch_update_findings(
                    FindingIdentifiers=[{"Id": i, "ProductArn": place.product_arn} for i in batch],
                    Workflow={"Status": status},
                    Note={"Text": note, "UpdatedBy": NOTE_AUTHOR},
                )
            except ClientError as error:
                # The findings are imported; only their workflow is not set.
                logger.warning(
                    "Security Hub did not set the workflow of findings",
                    extra={"status": status, "ids": batch, "error": error_code(error)},
                )
                continue
            for unprocessed in answer.get("UnprocessedFindings", []):
                logger.warning(
                    "Security Hub did not set a finding's workflow", extra={"finding": unprocessed}
                )

    def _reopen(
        self,
        api: Any,
        place: Place,
        planned: list[Planned],
        known: dict[str, dict[str, Any]] | None,
    ) -> None:
        """Drift whose finding BucketWarden suppressed (an exemption that no longer applies) is
        open again: Security Hub does not reset a SUPPRESSED workflow by itself. `known`: the
        FAILED findings read already (the sweep's); else they are read by Id."""
        if not planned:
            return
        ids = [self._id(p, place) for p in planned]
        if known is None:
            found = self._existing(api, place, ids)
        else:
            found = {i: known[i] for i in ids if i in known}
        suppressed = [
            finding_id_
            for finding_id_, finding in found.items()
            if finding.get("Workflow", {}).get("Status") == "SUPPRESSED"
            and finding.get("Note", {}).get("UpdatedBy") == NOTE_AUTHOR
        ]
        if suppressed:
            note = "drift no longer exempted: open again (BucketWarden)"
            self._update_workflow(api, place, suppressed, "NEW", note)

    # -- reading existing findings ------------------------------------------------------------

    def _existing(self, api: Any, place: Place, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The findings of these Ids in our product (GetFindings, filtered again here: only
        BucketWarden's own findings are ever changed)."""
        wanted = set(ids)
        found: dict[str, dict[str, Any]] = {}
        for batch in _chunks(sorted(wanted), FILTER_VALUES):
            filters = {
                "Id": [{"Value": i, "Comparison": "EQUALS"} for i in batch],
                "ProductArn": [{"Value": place.product_arn, "Comparison": "EQUALS"}],
            }
            for finding in self._get_findings(api, filters):
                if finding.get("Id") in wanted and _ours(finding, place):
                    found[finding["Id"]] = finding
        return found

    def _failed_findings(self, api: Any, place: Place) -> dict[str, dict[str, Any]]:
        """BucketWarden's active FAILED findings in the account and region (the reconcile)."""
        filters = {
            "ProductArn": [{"Value": place.product_arn, "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": GENERATOR_PREFIX, "Comparison": "PREFIX"}],
            "ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        }
        return {
            finding["Id"]: finding
            for finding in self._get_findings(api, filters)
            if _ours(finding, place)
            and finding.get("Compliance", {}).get("Status") == "FAILED"
            and finding.get("RecordState", "ACTIVE") == "ACTIVE"
        }

    def _get_findings(self, api: Any, filters: dict[str, Any]) -> Iterable[dict[str, Any]]:
        token: str | None = None
        while True:
            more = {"NextToken": token} if token else {}
            self.calls["GetFindings"] += 1
            page = api.get_findings(Filters=filters, MaxResults=BATCH_SIZE, **more)
            yield from page.get("Findings", [])
            token = page.get("NextToken")
            if not token:
                return

    # -- Security Hub unavailable --------------------------------------------------------------

    def _is_quiet(self, account: str, region: str) -> bool:
        with _quiet_lock:
            until = _quiet.get((account, region))
        return until is not None and utc_now() < until

    def _unavailable(
        self,
        account: str,
        region: str,
        error: ClientError | BotoCoreError | MemberRoleUnavailable,
        planned: list[Planned],
    ) -> None:
        """Not enabled, denied, or the member role unavailable: one warning, then quiet for
        QUIET_PERIOD. Anything else (throttling after the retries, 5xx) is a warning too: the
        outcome stands (audited, notified) and the next sweep imports its finding again."""
        if isinstance(error, ClientError):
            code = error_code(error)
            why = f"{code}: {error_message(error) or 'no message'}"
            if code in UNAVAILABLE_CODES:
                with _quiet_lock:
                    _quiet[(account, region)] = utc_now() + QUIET_PERIOD
        elif isinstance(error, MemberRoleUnavailable):
            why = error.reason
        else:
            why = type(error).__name__
        warning = (
            f"findings not imported into Security Hub in account {account}, region {region} "
            f"({why}); is Security Hub enabled there, and may BucketWarden's role import?"
        )
        logger.warning(warning, extra={"account": account, "region": region})
        if self.metrics is not None:
            self.metrics.emit_account("SecurityHubUnavailable", account)
        if planned:
            planned[0].outcome.warnings.append(warning)


def _ours(finding: dict[str, Any], place: Place) -> bool:
    return finding.get("ProductArn") == place.product_arn and str(
        finding.get("GeneratorId", "")
    ).startswith(GENERATOR_PREFIX)


def _control(control_id: str | None) -> Control[Any] | None:
    """The control an outcome is of; None for outcomes of no control (an ignored event, an
    exemption change)."""
    if not control_id:
        return None
    try:
        return control_of(control_id)
    except KeyError:
        return None


def _default_region() -> str:
    return boto3.session.Session().region_name or "us-east-1"
