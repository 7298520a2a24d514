"""object-level-logging: a CloudTrail trail logs S3 object-level events, write and read, for every
bucket (FSBP S3.22 write, S3.23 read). Detect only, by the sweep.

Management events (what BucketWarden itself reacts to) say who changed a bucket's settings; only
data events say who read, wrote or deleted its objects, which is what an investigation of a leak
asks. They are billed per event and chosen for the whole organization, so BucketWarden reports a
missing trail and never creates or changes one: `fixable` is False, and it has no trigger events
(a trail's selectors change rarely; the sweep judges the account once per run, as it does the
account's Block Public Access).

The subject is the account; the state is every trail the region's CloudTrail lists (its own and
the multi-region trails of other home regions, `includeShadowTrails`), each with its event
selectors (GetEventSelectors) and whether it is logging (GetTrailStatus: a stopped trail logs
nothing): {"Trails": [{"Name", "TrailARN", "HomeRegion", "IsMultiRegionTrail", "IsLogging",
"EventSelectors", "AdvancedEventSelectors"}]}. A trail whose details cannot be read here (a
shadow trail that CloudTrail does not resolve) keeps {"Unreadable": error code} and counts for
nothing.

A trail logs an access kind for every bucket when, while logging, one of its selectors says so:
- basic: `DataResources` of Type `AWS::S3::Object` with the value `arn:<partition>:s3` or
  `arn:<partition>:s3:::` (all buckets), `ReadWriteType` All (both), WriteOnly or ReadOnly;
- advanced: `eventCategory` = Data and `resources.type` = AWS::S3::Object, and `readOnly` = true
  (read), false (write) or no `readOnly` field (both), with no other field narrowing it (an ARN
  prefix, event names): a narrower selector logs some buckets or calls, not all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import CannotFix, Control, Evaluation, State
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_cloudtrail.type_defs import TrailTypeDef

WRITE, READ = "write", "read"
KINDS = (WRITE, READ)
S3_OBJECT = "AWS::S3::Object"
# Every bucket of the partition, as a basic selector names it.
ALL_BUCKETS = re.compile(r"^arn:aws(-[a-z]+)*:s3(:::)?$")
READ_WRITE_KINDS = {"All": KINDS, "WriteOnly": (WRITE,), "ReadOnly": (READ,)}
READ_ONLY_KINDS = {"true": (READ,), "false": (WRITE,)}
# Advanced selector fields that pick S3 data events without narrowing them to some buckets.
BROAD_FIELDS = frozenset({"eventCategory", "resources.type", "readOnly"})
UNRESOLVED_TRAIL = "TrailNotFoundException"
NOT_FIXABLE = (
    "a trail's S3 data events are billed per event and chosen for the organization: "
    "BucketWarden reports them, never turns them on"
)


def _basic_kinds(selector: dict[str, Any]) -> tuple[str, ...]:
    for resource in selector.get("DataResources") or []:
        values = resource.get("Values") or []
        if resource.get("Type") == S3_OBJECT and any(ALL_BUCKETS.match(v) for v in values):
            return READ_WRITE_KINDS.get(selector.get("ReadWriteType", "All"), ())
    return ()


def _advanced_kinds(selector: dict[str, Any]) -> tuple[str, ...]:
    fields = {f.get("Field"): f for f in selector.get("FieldSelectors") or []}
    if not set(fields) <= BROAD_FIELDS:
        return ()
    if any(set(f) - {"Field", "Equals"} for f in fields.values()):
        return ()  # NotEquals, StartsWith...: narrower than every bucket, or not S3 at all
    if fields.get("eventCategory", {}).get("Equals") != ["Data"]:
        return ()
    if fields.get("resources.type", {}).get("Equals") != [S3_OBJECT]:
        return ()
    if "readOnly" not in fields:
        return KINDS
    (value, *more) = fields["readOnly"].get("Equals") or [""]
    return () if more else READ_ONLY_KINDS.get(value.lower(), ())


def logged_kinds(trail: dict[str, Any]) -> set[str]:
    """The access kinds (write, read) the trail logs for every bucket; none while stopped."""
    if not trail.get("IsLogging"):
        return set()
    kinds: set[str] = set()
    for selector in trail.get("EventSelectors") or []:
        kinds.update(_basic_kinds(selector))
    for selector in trail.get("AdvancedEventSelectors") or []:
        kinds.update(_advanced_kinds(selector))
    return kinds


def _loggers(state: State) -> dict[str, list[str]]:
    """The names of the trails that log each kind."""
    found: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for trail in (state or {}).get("Trails") or []:
        for kind in logged_kinds(trail):
            found[kind].append(str(trail.get("Name")))
    return found


class ObjectLevelLogging(Control["CloudTrailClient"]):
    id = "object-level-logging"
    fsbp = ("S3.22", "S3.23")
    severity = "MEDIUM"
    family = "logging"
    title = "A CloudTrail trail logs S3 object-level events (write and read)"
    surface = "CloudTrail S3 data events"
    trigger_events = ()
    read_actions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:GetTrailStatus",
    )
    write_actions = ()
    scope = "account"
    service = "cloudtrail"
    default_mode = Mode.NOTIFY
    fixable = False

    def subject_account(self, subject: str) -> str | None:
        return subject  # the subject is the account id

    def read(self, cloudtrail: CloudTrailClient, account: str) -> State:
        trails = cloudtrail.describe_trails(includeShadowTrails=True).get("trailList", [])
        return {"Trails": [self._trail(cloudtrail, trail) for trail in trails]}

    @staticmethod
    def _trail(cloudtrail: CloudTrailClient, trail: TrailTypeDef) -> dict[str, Any]:
        arn = trail.get("TrailARN") or trail.get("Name", "")
        found: dict[str, Any] = {
            key: trail.get(key) for key in ("Name", "TrailARN", "HomeRegion", "IsMultiRegionTrail")
        }
        try:
            selectors = cloudtrail.get_event_selectors(TrailName=arn)
            status = cloudtrail.get_trail_status(Name=arn)
        except ClientError as error:
            if error_code(error) != UNRESOLVED_TRAIL:
                raise
            return {**found, "Unreadable": UNRESOLVED_TRAIL}
        return {
            **found,
            "IsLogging": bool(status.get("IsLogging")),
            "EventSelectors": selectors.get("EventSelectors", []),
            "AdvancedEventSelectors": selectors.get("AdvancedEventSelectors", []),
        }

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        loggers = _loggers(state)
        parts = [
            f"{kind} events logged by {', '.join(names)}" if names else f"{kind} events not logged"
            for kind, names in loggers.items()
        ]
        if all(loggers.values()):
            return Evaluation(True, "S3 object-level " + "; ".join(parts))
        trails = (state or {}).get("Trails") or []
        stopped = [str(t.get("Name")) for t in trails if "IsLogging" in t and not t["IsLogging"]]
        notes = [f"stopped trail(s): {', '.join(stopped)}"] if stopped else []
        if not trails:
            notes.append("no trail in this region")
        reason = "; ".join([f"S3 object-level {parts[0]}", *parts[1:], *notes, NOT_FIXABLE])
        return Evaluation(False, reason, fixable=False)

    def apply(self, cloudtrail: CloudTrailClient, account: str, desired: State) -> None:
        raise CannotFix(NOT_FIXABLE)  # never asked: every verdict is unfixable

    def describe(self, state: State) -> str:
        loggers = _loggers(state)
        return "; ".join(f"{kind}: {', '.join(loggers[kind]) or 'none'}" for kind in KINDS)
