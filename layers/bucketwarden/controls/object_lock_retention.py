"""object-lock-retention: Object Lock default retention is not weaker than the bucket's baseline.

The baseline is the stronger of two: the configured floor (OBJECT_LOCK_MODE for OBJECT_LOCK_DAYS)
and the strongest default retention that this control's audit records hold for the bucket (their
before and after). COMPLIANCE is stronger than GOVERNANCE whatever the period, because nobody can
shorten or lift it, while anyone allowed s3:BypassGovernanceRetention can lift GOVERNANCE; within a
mode the longer period is stronger (a year counts as 365 days). A weaker rule, or a removed
default retention, is drift, and the fix puts the baseline rule back in the unit it was recorded in.

Only records whose integrity tag verifies count (integrity.py): a record someone else wrote sets
no baseline. COMPLIANCE is applied only when OBJECT_LOCK_MODE (ObjectLockBaselineRetention) says
COMPLIANCE: objects under it cannot be deleted by anyone, root included, until it ends, so only
a person's deployed configuration may ask for it. Otherwise a recorded COMPLIANCE rule counts as
GOVERNANCE for its period: a recorded baseline never upgrades GOVERNANCE to COMPLIANCE.

Object Lock itself cannot be turned off, and this control never turns it on: buckets without it
are compliant. The state is {"Configuration": <GetObjectLockConfiguration's configuration, or
None without Object Lock>, "RecordedBaseline": <the strongest recorded rule, or None>}.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import (
    Control,
    Evaluation,
    RecordReader,
    State,
    without_metadata,
)
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOT_CONFIGURED = "ObjectLockConfigurationNotFoundError"
NOT_ENABLED = "Object Lock not enabled (it cannot be turned on or off by this service)"
# Weakest first.
MODES = ("GOVERNANCE", "COMPLIANCE")
DAYS_PER_YEAR = 365

# A default retention: {"Mode": ..., "Days": n} or {"Mode": ..., "Years": n}.
Retention = dict[str, Any]


def retention(rule: Any) -> Retention | None:
    """A default retention in S3's shape with its one period, or None if it holds none.

    S3 returns Days or Years; some emulators return both, one of them 0: the positive one counts.
    """
    if not isinstance(rule, dict) or rule.get("Mode") not in MODES:
        return None
    for unit in ("Days", "Years"):
        if int(rule.get(unit) or 0) > 0:
            return {"Mode": rule["Mode"], unit: int(rule[unit])}
    return None


def strength(rule: Retention) -> tuple[int, int]:
    """Orders retentions: the mode first, then the period in days."""
    days = int(rule.get("Days", 0)) + DAYS_PER_YEAR * int(rule.get("Years", 0))
    return MODES.index(rule["Mode"]), days


def strongest(rules: Iterable[Retention | None]) -> Retention | None:
    """The strongest of `rules` (the first of equals), or None if there is none."""
    best: Retention | None = None
    for rule in rules:
        if rule is not None and (best is None or strength(rule) > strength(best)):
            best = rule
    return best


def default_retention(configuration: Any) -> Retention | None:
    rule = (configuration or {}).get("Rule") or {}
    return retention(rule.get("DefaultRetention"))


def lock_enabled(configuration: Any) -> bool:
    return (configuration or {}).get("ObjectLockEnabled") == "Enabled"


def configured_baseline(settings: Settings) -> Retention | None:
    if settings.object_lock_mode is None or settings.object_lock_days < 1:
        return None
    return {"Mode": settings.object_lock_mode, "Days": settings.object_lock_days}


def within_configured_mode(rule: Retention | None, settings: Settings) -> Retention | None:
    """A recorded rule as it may be applied: COMPLIANCE only if the configuration says so."""
    if rule is None or rule["Mode"] != "COMPLIANCE" or settings.object_lock_mode == "COMPLIANCE":
        return rule
    return {**rule, "Mode": "GOVERNANCE"}


def raises_baseline(record: dict[str, Any], settings: Settings) -> bool:
    """Could this record make the baseline stronger than the configured one? Only such records
    are verified (each verification may cost a KMS call)."""
    configured = configured_baseline(settings)
    return any(
        rule is not None and (configured is None or strength(rule) > strength(configured))
        for rule in (within_configured_mode(r, settings) for r in recorded_retentions([record]))
    )


def recorded_retentions(records: Iterable[dict[str, Any]]) -> Iterator[Retention | None]:
    """Every retention an audit record of this control holds: each side's rule and baseline."""
    for record in records:
        for side in (record.get("before"), record.get("after")):
            if isinstance(side, dict):
                yield default_retention(side.get("Configuration"))
                yield retention(side.get("RecordedBaseline"))


def describe_retention(rule: Retention | None) -> str:
    if rule is None:
        return "no default retention"
    unit = "Days" if "Days" in rule else "Years"
    count = rule[unit]
    name = unit.lower()[:-1] if count == 1 else unit.lower()
    return f"{rule['Mode']} {count} {name}"


def _drift(current: Retention | None, baseline: Retention, source: str) -> str:
    wanted = f"the {source} baseline {describe_retention(baseline)}"
    if current is None:
        return f"no default retention; {wanted} applies"
    return f"default retention {describe_retention(current)} is weaker than {wanted}"


class ObjectLockRetention(Control["S3Client"]):
    id = "object-lock-retention"
    fsbp = ("S3.15",)
    severity = "MEDIUM"
    family = "object-lock"
    title = "Object Lock default retention is not weaker than the baseline"
    surface = "object lock configuration"
    trigger_events = ("PutObjectLockConfiguration",)
    read_actions = ("s3:GetBucketObjectLockConfiguration",)
    write_actions = ("s3:PutBucketObjectLockConfiguration",)
    # The recorded baseline comes from the audit table, not the bucket: a rollback neither
    # restores nor compares it.
    derived_keys = ("RecordedBaseline",)

    def read(self, s3: S3Client, bucket: str) -> State:
        try:
            response = s3.get_object_lock_configuration(Bucket=bucket)
        except ClientError as error:
            if error_code(error) != NOT_CONFIGURED:
                raise
            configuration = None
        else:
            configuration = without_metadata(response).get("ObjectLockConfiguration")
        return {"Configuration": configuration, "RecordedBaseline": None}

    def observe(
        self, s3: S3Client, bucket: str, settings: Settings, records: RecordReader | None = None
    ) -> State:
        state = self.read(s3, bucket)
        # Without Object Lock there is nothing to compare, so the audit table is not asked.
        if state and lock_enabled(state["Configuration"]) and records and records.table:
            found = records.history(
                bucket, self.id, relevant=lambda record: raises_baseline(record, settings)
            )
            rules = recorded_retentions(found)
            state["RecordedBaseline"] = strongest(
                within_configured_mode(rule, settings) for rule in rules
            )
        return state

    def verify(
        self,
        s3: S3Client,
        bucket: str,
        settings: Settings,
        before: State,
        records: RecordReader | None = None,
    ) -> State:
        # The recorded baseline is the one just judged: the audit table is not asked again.
        state = self.read(s3, bucket)
        if state and before and "RecordedBaseline" in before:
            state["RecordedBaseline"] = before["RecordedBaseline"]
        return state

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        configuration = (state or {}).get("Configuration")
        if not lock_enabled(configuration):
            return Evaluation(True, NOT_ENABLED)
        configured = configured_baseline(settings)
        recorded = within_configured_mode(
            retention((state or {}).get("RecordedBaseline")), settings
        )
        baseline = strongest([configured, recorded])
        if baseline is None:
            return Evaluation(
                True, "no baseline: OBJECT_LOCK_MODE is not set and none is recorded for the bucket"
            )
        # Equal baselines are named after the configured one (it comes first).
        source = "configured" if baseline is configured else "recorded"
        current = default_retention(configuration)
        if current is not None and strength(current) >= strength(baseline):
            return Evaluation(
                True,
                f"default retention {describe_retention(current)} is not weaker than the "
                f"{source} baseline {describe_retention(baseline)}",
            )
        desired_configuration = {
            **(configuration or {}),
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": dict(baseline)},
        }
        desired = {**(state or {}), "Configuration": desired_configuration}
        return Evaluation(False, _drift(current, baseline, source), desired)

    def describe(self, state: State) -> str:
        configuration = (state or {}).get("Configuration")
        if not lock_enabled(configuration):
            return "Object Lock off"
        text = f"Object Lock on, {describe_retention(default_retention(configuration))}"
        recorded = retention((state or {}).get("RecordedBaseline"))
        if recorded:
            text += f" (recorded baseline {describe_retention(recorded)})"
        return text

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        configuration = (desired or {}).get("Configuration")
        # Object Lock cannot be turned off: a state without it has nothing to write.
        if configuration is None:
            return
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=configuration)
