"""Rollback: put a fixed surface back as its audit record's `before` holds it, and keep it so.

`bucketwarden rollback AUDIT_ID` reads the record, checks that the surface still holds what the
fix left (the record's `after`; `--force` overrides), exempts the bucket from the control with
tags, then writes `before` with the control's own `apply` and reads the surface again to prove
it. The exemption comes first so that the restore's own CloudTrail event finds it; without it
the service would fix the bucket again within seconds.

The tags are a read-modify-write of the bucket's whole tag set (GetBucketTagging,
PutBucketTagging): every other tag stays. A bucket with system tags (`aws:…`, written by
CloudFormation), which PutBucketTagging cannot write back, is tagged with S3 Control's
TagResource instead, which changes only the keys it names.

A rollback that would open what the fix closed asks first: if `before` is public where the
surface now is not (judged by the `evaluate` of every control of the same surface that closes
public exposure, `closes_public_exposure`), or grants accounts the surface does not grant now
(policy principals of other accounts, ACL grants to other canonical users or e-mail grantees),
it is refused unless `--force`. The exemption it
writes ends: `bucketwarden:exempt-until` is set `exempt_days` from today (the CLI's
`--exempt-days`, default 7).

Writing `before` undoes everything the same write did to the surface: when controls that share
a surface (the bucket policy's) fixed it in one write, all of them are rolled back and exempted,
and the plan says so. A subject no tag can exempt (an account) is restored with a warning that
only the control's mode keeps it so.

Nothing here knows a particular control: what differs between controls is their rollback
contract (controls/base.py) — `restore_target` (what is written, what must be read back, and a
note where S3 cannot return the surface exactly), `surface_of` with `derived_keys` (what is
restored and compared), `refusal_hint` (why S3 may refuse the write), and `subject_account`,
`subject_region` and `exemption_bucket` (where the subject is, and what can exempt it).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden import audit, exemptions
from bucketwarden.accounts import AccountAccess, MemberRoleUnavailable
from bucketwarden.aws import GONE_CODES, client, error_code, error_message, is_gone
from bucketwarden.catalogue import CONTROL_IDS, CONTROLS, control
from bucketwarden.controls.base import Control, RestoreTarget, State
from bucketwarden.controls.bucket_policy import bucket_arn, policy_of
from bucketwarden.controls.object_ownership import grantee_name
from bucketwarden.outcome import Status, utc_now
from bucketwarden.policy import PolicyError, named_accounts
from bucketwarden.settings import Settings
from bucketwarden_tools import audit_history

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3.type_defs import TagTypeDef
    from mypy_boto3_s3control.type_defs import TagTypeDef as S3ControlTag

REMEDIATED = Status.REMEDIATED.value
# S3's limits on a bucket's tags (the same for PutBucketTagging and TagResource).
MAX_TAGS = 50
MAX_TAG_VALUE = 256
# Characters S3 accepts in tag values besides letters, digits and spaces.
TAG_PUNCTUATION = frozenset("_.:/=+-@")
SYSTEM_TAG_PREFIX = "aws:"
# The role a rollback assumes in a member account: the one AWS Organizations makes in every
# account it creates, trusted by the management account. Not a member role: those trust only
# the hub's function roles, and may not tag a bucket, which a rollback must (its exemption).
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
ROLLBACK_SESSION = "bucketwarden-rollback"


class RollbackError(Exception):
    """Why a record cannot be rolled back: one line for the user, exit code 2."""

    def __init__(self, message: str, force_helps: bool = False) -> None:
        super().__init__(message)
        # True when --force would roll back anyway (the surface changed since the fix).
        self.force_helps = force_helps


# -- the record ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """An audit record of a fix: what it changed, on which subject, from what to what."""

    item: dict[str, Any]
    control: Control
    # Reaches the record's account: the caller's own clients there, a role's elsewhere.
    access: AccountAccess | None = None

    @property
    def account(self) -> str | None:
        """The account the fix was made in (organization mode records it); None: the caller's."""
        account = self.item.get("account")
        return str(account) if account else None

    def client(self, service: str) -> Any:
        """A client of `service` acting in the record's account and region."""
        if self.access is None:
            return client(service, self.region)  # type: ignore[call-overload]  # any service
        return self.access.client(service, self.account, self.region)  # type: ignore[call-overload]

    @property
    def audit_id(self) -> str:
        return str(self.item["audit_id"])

    @property
    def subject(self) -> str:
        return str(self.item["bucket"])

    @property
    def before(self) -> State:
        return self.item.get("before")

    @property
    def after(self) -> State:
        return self.item.get("after")

    @property
    def region(self) -> str | None:
        """Where the subject is: the record keeps it, unless the subject's name says it."""
        return self.control.subject_region(self.subject, self.item.get("region"))

    def names(self) -> str:
        """ "CONTROL on bucket NAME" (or account ID, or access point ARN)."""
        noun = self.control.scope.replace("-", " ")
        return f"{self.control.id} on {noun} {self.subject}"


def load(
    dynamodb: DynamoDBClient,
    table: str,
    audit_id: str,
    settings: Settings,
    access: AccountAccess | None = None,
) -> Record:
    """The record of a fix that can be rolled back, or a RollbackError saying why not.

    Only a record whose integrity tag verifies is rolled back: its `before` is written to the
    bucket, and a record someone else wrote could put any configuration there.
    """
    try:
        item = audit_history.store(dynamodb, table, settings).checked_record(audit_id)
    except audit.UntrustedRecord as untrusted:
        raise RollbackError(f"{untrusted}: it is never rolled back") from untrusted
    if item is None:
        raise RollbackError(f"no audit record {audit_id!r} in table {table}")
    status = item.get("status")
    if status == audit_history.ROLLED_BACK:
        raise RollbackError(
            f"audit record {audit_id} records a rollback (of {item.get('rolls_back')}), not a "
            "fix: to undo a rollback, delete the exemption tags it set and BucketWarden fixes "
            "the bucket again"
        )
    # A pending record is a fix that was sent but never confirmed (its event was dead-lettered):
    # it may have landed, and the check that the surface still holds its `after` decides.
    if status not in {REMEDIATED, audit.PENDING}:
        raise RollbackError(
            f"audit record {audit_id} is {status}: only a {REMEDIATED} (or {audit.PENDING}) "
            "record changed a configuration, so only such a record can be rolled back"
        )
    if item.get("control") not in CONTROL_IDS or not item.get("bucket"):
        raise RollbackError(f"audit record {audit_id} names no known control and subject")
    return Record(item, control(str(item["control"])), access)


# -- the exemption -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagChange:
    """The exemption tags of one bucket: its whole tag set before and after."""

    bucket: str
    before: dict[str, str]
    after: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def changes(self) -> list[tuple[str, str | None, str | None]]:
        """(key, value before, value after) of every tag the exemption sets or removes."""
        keys = dict.fromkeys([*self.before, *self.after])
        return [
            (key, self.before.get(key), self.after.get(key))
            for key in keys
            if self.before.get(key) != self.after.get(key)
        ]

    @property
    def has_system_tags(self) -> bool:
        return any(key.startswith(SYSTEM_TAG_PREFIX) for key in self.before)


def tag_text(text: str) -> str:
    """`text` as a valid tag value: characters S3 refuses become "_", at most 256 of them."""
    kept = (ch if ch.isalnum() or ch == " " or ch in TAG_PUNCTUATION else "_" for ch in text)
    return "".join(kept)[:MAX_TAG_VALUE]


def exemption_reason(audit_id: str, day: date, caller: str) -> str:
    return tag_text(f"rolled back {audit_id} on {day.isoformat()} by {caller}")


def _targets(value: str, control_id: str, settings: Settings) -> bool:
    """Does the exempt tag's value name `control_id` (or "all")? The engine's own parser says."""
    probe = {settings.exempt_tag_key: value, settings.exempt_reason_key: "-"}
    return exemptions.check(probe, control_id, settings, date.min).exempt


def _with_ids(value: str, control_ids: list[str], settings: Settings) -> str:
    missing = [c for c in control_ids if not _targets(value, c, settings)]
    if not value.strip():
        return "+".join(missing)
    separator = next((s for s in (",", "+", "/", " ") if s in value.strip()), "+")
    return separator.join([value.strip(), *missing]) if missing else value


def _current_exemption(
    tags: dict[str, str], settings: Settings, today: date
) -> exemptions.ExemptionCheck | None:
    """The bucket's exemption as the engine judges it (for any control), or None without one."""
    if settings.exempt_tag_key not in tags:
        return None
    probe = {**tags, settings.exempt_tag_key: "all"}
    return exemptions.check(probe, "all", settings, today)


def exempted_tags(
    bucket: str,
    tags: dict[str, str],
    control_ids: list[str],
    settings: Settings,
    *,
    reason: str,
    today: date,
    until: date,
) -> TagChange:
    """`tags` with `control_ids` exempted until `until`; every other tag kept as it is.

    An exemption in effect gains the control ids and keeps its reason (ours joins it); its end
    date stays if it is earlier than ours, and becomes ours if it is later or missing (the
    rollback never leaves an exemption without end). One not in effect (no reason, or past its
    end date) is replaced rather than revived: adding a reason would widen it to its other
    controls.
    """
    if all(exemptions.check(tags, c, settings, today).exempt for c in control_ids):
        note = f"bucket {bucket} is already exempt from {', '.join(control_ids)}: tags unchanged"
        return TagChange(bucket, tags, dict(tags), (note,))
    key, reason_key, until_key = (
        settings.exempt_tag_key,
        settings.exempt_reason_key,
        settings.exempt_until_key,
    )
    current = _current_exemption(tags, settings, today)
    wanted = dict(tags)
    notes: list[str] = []
    if current is not None and current.exempt:
        wanted[key] = _with_ids(tags[key], control_ids, settings)
        wanted[reason_key], joined = _joined_reason(tags.get(reason_key, "").strip(), reason)
        notes.extend([joined] if joined else [])
        wanted[until_key], note = _joined_end(tags.get(until_key, "").strip(), until, until_key)
        notes.append(note)
    else:
        if current is not None:
            notes.append(
                f"the bucket's exemption {key}={tags[key]!r} was not in effect ({current.note}): "
                "replaced by the rollback's"
            )
        wanted[key] = "+".join(control_ids)
        wanted[reason_key] = reason
        wanted[until_key] = until.isoformat()  # a date left behind is replaced by ours
        notes.append(_ends_note(until, until_key))
    if len(wanted) > MAX_TAGS:
        raise RollbackError(
            f"bucket {bucket} has {len(tags)} tags: the exemption tags would exceed S3's "
            f"{MAX_TAGS}; remove a tag or exempt the bucket by hand, then roll back again"
        )
    return TagChange(bucket, tags, wanted, tuple(notes))


def _ends_note(ends: date, until_key: str) -> str:
    return (
        f"the exemption ends after {ends.isoformat()} ({until_key}): BucketWarden fixes the "
        "bucket again then; set a later date (or roll back with --exempt-days) to keep the "
        "rollback longer"
    )


def _joined_end(old: str, ours: date, until_key: str) -> tuple[str, str]:
    """The end of an exemption in effect that gains our ids: the earlier of its own and ours.

    Its own date, when it has one, is a valid date not before today (it is in effect)."""
    if old and date.fromisoformat(old[:10]) <= ours:
        return old, _ends_note(date.fromisoformat(old[:10]), until_key)
    note = _ends_note(ours, until_key)
    if old:
        return ours.isoformat(), f"{note}; the bucket's own end date {old} is brought forward"
    return ours.isoformat(), f"{note}; the bucket's exemption had no end date, it has this one now"


def _joined_reason(old: str, ours: str) -> tuple[str, str | None]:
    """Our reason after the bucket's own, which is kept; alone when there is none or no room."""
    if not old or old == ours:
        return ours, None
    joined = f"{old} - {ours}"
    if len(joined) <= MAX_TAG_VALUE:
        return joined, None
    return ours, f"the previous exemption reason was too long to keep beside ours: {old!r}"


# -- the plan -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything a rollback will do, read and checked before anything is changed."""

    record: Record
    now: State  # the surface as it is (the fix's `after`, unless forced)
    target: RestoreTarget  # what is written, and what must be read back (the control says)
    caller: str
    siblings: list[Record] = field(default_factory=list)
    exemption: TagChange | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        """The records this rollback undoes: the one asked for, then its siblings."""
        return [self.record, *self.siblings]


def plan(
    dynamodb: DynamoDBClient,
    table: str,
    audit_id: str,
    settings: Settings,
    *,
    exempt_days: int,
    force: bool = False,
    access: AccountAccess | None = None,
) -> Plan:
    """Read the record, the surface, the caller and the tags; change nothing."""
    record = load(dynamodb, table, audit_id, settings, access)
    if access is not None:
        access.reach(record.account)  # a missing role is said before anything is read
    _refuse_second_rollback(record, force)
    now = read_surface(record)
    caller = caller_arn()
    # Both objections are named at once: --force overrides them together.
    objections = _opening(record, now, settings, own_account(record, caller))
    objections.extend(_check_unchanged(record, now))
    warnings = _overridden(objections, force)
    target = record.control.restore_target(record.before)
    warnings.extend([target.note] if target.note else [])
    found = Plan(record, now, target, caller, warnings=warnings)
    found.siblings = siblings(dynamodb, table, record, settings)
    found.exemption = _exemption(found, settings, exempt_days)
    return found


# -- what a restore would open ------------------------------------------------------------------


def own_account(record: Record, caller: str) -> str:
    """The account the subject belongs to: its name may say it (an access point's ARN, an
    account id), or the record its account (a member's, in an organization); otherwise (a
    bucket) it is the caller's, as a rollback runs with the owning account's credentials."""
    named = record.control.subject_account(record.subject) or record.account
    if named is not None:
        return named
    parts = caller.split(":")
    return parts[4] if len(parts) > 4 else ""


def opened_by_restore(record: Record, now: State, settings: Settings, account: str) -> list[str]:
    """What writing `before` over `now` would open: public access that the public-exposure
    controls of the surface find in `before` but not (or not the same) in `now`, and grants to
    other accounts that `before` makes and `now` does not."""
    judges = [
        c for c in CONTROLS if c.closes_public_exposure and c.surface == record.control.surface
    ]
    opened = []
    for judge in judges:
        was = judge.evaluate(record.before, settings)
        if was.compliant:
            continue
        current = judge.evaluate(now, settings)
        if current.compliant or current.reason != was.reason:
            opened.append(f"{judge.id}: {was.reason}")
    others = granted_others(record.before, account) - granted_others(now, account)
    if others:
        opened.append(f"access for {', '.join(sorted(others))}")
    return opened


def granted_others(state: State, account: str) -> set[str]:
    """Who besides `account` a state grants to: ACL grants to other canonical users or e-mail
    grantees, and policy principals of other accounts."""
    found = state if isinstance(state, dict) else {}
    owner_id = (found.get("Owner") or {}).get("ID")
    grants = found.get("Grants") or []
    named = {grantee_name(g, owner_id) for g in grants if not (g.get("Grantee") or {}).get("URI")}
    document = policy_of(found)
    if document is not None:
        with suppress(PolicyError):  # a text that is no policy grants nothing S3 would honour
            named |= named_accounts(document)
    return named - {"the owner", f"account {account}"}


# Why a rollback needs --force, and what the warning adds when --force overrides it.
Objection = tuple[str, str]


def _opening(record: Record, now: State, settings: Settings, account: str) -> list[Objection]:
    opened = opened_by_restore(record, now, settings, account)
    if not opened:
        return []
    what = (
        f"restoring the {record.control.surface} of {record.subject} as it was before the fix "
        f"would open it: {'; '.join(opened)}"
    )
    return [(what, ": it is open again, on purpose")]


def _overridden(objections: list[Objection], force: bool) -> list[str]:
    """Refuse unless `force`; forced, each objection becomes a warning."""
    if objections and not force:
        what = "; ".join(objection for objection, _ in objections)
        raise RollbackError(f"{what}; --force rolls back anyway", force_helps=True)
    return [f"{objection}; rolled back anyway (--force){then}" for objection, then in objections]


def _refuse_second_rollback(record: Record, force: bool) -> None:
    done_by = record.item.get("rolled_back_by")
    if done_by and not force:
        raise RollbackError(
            f"audit record {record.audit_id} was rolled back already, at "
            f"{record.item.get('rolled_back_at')} (audit record {done_by})",
            force_helps=True,
        )


def subject_client(record: Record) -> Any:
    return record.client(record.control.service)


def read_surface(record: Record) -> State:
    try:
        return record.control.read(subject_client(record), record.subject)
    except ClientError as error:
        if is_gone(error):
            noun = GONE_CODES[error_code(error)]
            raise RollbackError(
                f"{noun} {record.subject} no longer exists: nothing to roll back"
            ) from error
        raise


def _check_unchanged(record: Record, now: State) -> list[Objection]:
    """The surface must still hold what the fix left, or the rollback would undo a later change."""
    control_ = record.control
    found = control_.surface_of(now)
    if found == control_.surface_of(record.after):
        return []
    if found == control_.surface_of(record.before):
        raise RollbackError(
            f"the {control_.surface} of {record.subject} already holds its configuration from "
            "before the fix: nothing to roll back"
        )
    changed = (
        f"the {control_.surface} of {record.subject} changed since the fix: it is now "
        f"{control_.describe(now)}, not {control_.describe(record.after)} as the fix left it"
    )
    return [(changed, ": that change is overwritten")]


def caller_arn() -> str:
    """Who rolls back (GetCallerIdentity needs no permission): named in the exemption reason."""
    return str(client("sts").get_caller_identity()["Arn"])


def siblings(
    dynamodb: DynamoDBClient, table: str, record: Record, settings: Settings
) -> list[Record]:
    """Other controls' fixes made by the same write of the same surface.

    They share the fix's time and its `after`; writing `before` back undoes them too. Each is
    read again and verified: only a trusted record is rolled back and exempted with the other.
    """
    control_ = record.control
    others = {c.id for c in CONTROLS if c.surface == control_.surface and c.id != control_.id}
    fix_time = record.item.get("fix_time")
    if not others or not fix_time:
        return []
    found: list[Record] = []
    for listed in audit_history.bucket_records(dynamodb, table, record.subject):
        if not _same_write(listed, record, others):
            continue
        item = audit_history.store(dynamodb, table, settings).get_record(str(listed["audit_id"]))
        if item is not None and _same_write(item, record, others):
            found.append(Record(item, control(str(item["control"])), record.access))
    return found


def _same_write(item: dict[str, Any], record: Record, others: set[str]) -> bool:
    return (
        item.get("control") in others
        and item.get("status") == REMEDIATED
        and item.get("fix_time") == record.item.get("fix_time")
        and item.get("after") == record.after
        and not item.get("rolled_back_by")
    )


def mode_parameter(control_id: str) -> str:
    """The template parameter of a control's mode, e.g. AccountPublicAccessBlockMode."""
    return "".join(part.capitalize() for part in control_id.split("-")) + "Mode"


def _exemption(found: Plan, settings: Settings, exempt_days: int) -> TagChange | None:
    record = found.record
    bucket = record.control.exemption_bucket(record.subject, found.now)
    ids = [r.control.id for r in found.records]
    if bucket is None:
        parameters = " and ".join(mode_parameter(c) for c in ids)
        found.warnings.append(
            f"no tag can exempt {record.names()}: set the stack's {parameters} parameter to "
            f"notify or off (sam deploy --parameter-overrides {mode_parameter(ids[0])}=notify) "
            "before rolling back, or BucketWarden puts the fix back within seconds"
        )
        return None
    today = utc_now().date()
    tags = exemptions.read_tags(record.client("s3"), bucket)
    reason = exemption_reason(record.audit_id, today, found.caller)
    until = today + timedelta(days=exempt_days)
    change = exempted_tags(bucket, tags, ids, settings, reason=reason, today=today, until=until)
    found.warnings.extend(change.notes)
    return change


# -- carrying it out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    restored: State  # the surface as read back after the restore
    rollback_ids: dict[str, str]  # audit id rolled back → the rollback's own audit record


def carry_out(found: Plan, dynamodb: DynamoDBClient, table: str, settings: Settings) -> Done:
    """Exempt, restore, verify, record. The tags go back as they were if the restore fails."""
    record = found.record
    tags = found.exemption if found.exemption is not None and found.exemption.changed else None
    if tags is not None:
        write_tags(tags, record)
    try:
        record.control.apply(subject_client(record), record.subject, found.target.desired)
    except ClientError as error:
        undone = "" if tags is None else _untag_after_refusal(tags, record)
        hint = record.control.refusal_hint
        because = f" ({hint})" if hint else ""
        raise RollbackError(f"{describe_error(error)}{because}: {_left(found)}{undone}") from error
    restored = record.control.read(subject_client(record), record.subject)
    if not found.target.reached(record.control.surface_of(restored)):
        raise RollbackError(
            f"the {record.control.surface} of {record.subject} reads back as "
            f"{record.control.describe(restored)}, not {record.control.describe(record.before)}: "
            "the rollback is not verified (the exemption tags stay)"
        )
    try:
        ids = {
            r.audit_id: audit_history.record_rollback(
                dynamodb,
                table,
                r.item,
                replaced=found.now,
                restored=restored,
                actor=found.caller,
                settings=settings,
            )
            for r in found.records
        }
    except (ClientError, audit.UntrustedRecord) as error:
        raise RollbackError(
            f"rolled back and verified, but the audit record was not written: {_describe(error)}"
        ) from error
    return Done(restored, ids)


def _describe(error: Exception) -> str:
    return describe_error(error) if isinstance(error, ClientError) else str(error)


def _left(found: Plan) -> str:
    """What a refused restore left: nothing changed, or (several writes) a part of it."""
    record = found.record
    try:
        now = record.control.read(subject_client(record), record.subject)
    except ClientError:
        return "the surface could not be read again to see what changed"
    if record.control.surface_of(now) == record.control.surface_of(found.now):
        return "nothing was rolled back"
    return (
        f"the {record.control.surface} was rolled back in part and is now "
        f"{record.control.describe(now)}; `bucketwarden remediate --bucket` or the next sweep "
        "puts the fix back"
    )


def _untag_after_refusal(change: TagChange, record: Record) -> str:
    """Put the tags back after a refused restore; say how that went."""
    try:
        restore_tags(change, record)
    except ClientError as error:
        return (
            f"; the exemption tags could not be put back ({describe_error(error)}): remove "
            f"them from bucket {change.bucket} by hand"
        )
    return "; the exemption tags were put back as they were"


def write_tags(change: TagChange, record: Record) -> None:
    """Give the bucket the exemption's tag set."""
    if change.has_system_tags:
        _retag(change.bucket, record, change.before, change.after)
    else:
        _put_tag_set(change.bucket, record, change.after)


def restore_tags(change: TagChange, record: Record) -> None:
    """Put the tag set back as it was before `write_tags`."""
    if change.has_system_tags:
        _retag(change.bucket, record, change.after, change.before)
    else:
        _put_tag_set(change.bucket, record, change.before)


def _put_tag_set(bucket: str, record: Record, tags: dict[str, str]) -> None:
    s3 = record.client("s3")
    if not tags:
        s3.delete_bucket_tagging(Bucket=bucket)
        return
    tag_set: list[TagTypeDef] = [{"Key": key, "Value": value} for key, value in tags.items()]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})


def _retag(bucket: str, record: Record, old: dict[str, str], new: dict[str, str]) -> None:
    """Change the tags from `old` to `new` key by key (S3 Control TagResource, UntagResource).

    PutBucketTagging replaces the whole set and refuses system tags (`aws:…`) in it; these
    calls change only the keys they name, so system tags are left as they are.
    """
    s3control = record.client("s3control")
    account = record.account or str(client("sts").get_caller_identity()["Account"])
    named = {"AccountId": account, "ResourceArn": bucket_arn(record.client("s3"), bucket)}
    changed: list[S3ControlTag] = [
        {"Key": k, "Value": v} for k, v in new.items() if old.get(k) != v
    ]
    removed = [key for key in old if key not in new]
    if changed:
        s3control.tag_resource(**named, Tags=changed)
    if removed:
        s3control.untag_resource(**named, TagKeys=removed)


def describe_error(error: ClientError) -> str:
    """ "AccessDenied on PutBucketTagging: the credentials in use may not do this"."""
    code = error_code(error)
    operation = getattr(error, "operation_name", "the call")
    message = error_message(error)
    if code in {"AccessDenied", "AccessDeniedException"}:
        message = "the credentials in use may not do this"
    return f"{code} on {operation}: {message}" if message else f"{code} on {operation}"


def run(
    dynamodb: DynamoDBClient,
    table: str,
    audit_id: str,
    settings: Settings,
    *,
    force: bool,
    dry_run: bool,
    exempt_days: int,
    role_name: str = DEFAULT_ROLE_NAME,
) -> tuple[Plan, Done | None]:
    """Plan the rollback and, unless `dry_run`, carry it out; AWS errors become RollbackErrors.

    A fix made in a member account of an organization is rolled back there, with `role_name`
    assumed in that account with the caller's credentials; the rollback's own audit record goes
    to `table` with the caller's (the hub's) credentials, as the fix's did."""
    try:
        access = AccountAccess(None, role_name, client("sts"), ROLLBACK_SESSION)
    except ValueError as error:
        raise RollbackError(f"--role-name: {error}") from error
    try:
        found = plan(
            dynamodb, table, audit_id, settings, force=force, exempt_days=exempt_days, access=access
        )
        return found, None if dry_run else carry_out(found, dynamodb, table, settings)
    except ClientError as error:
        raise RollbackError(describe_error(error)) from error
    except MemberRoleUnavailable as error:
        raise RollbackError(
            f"cannot act in account {error.account}, where the fix was made: {error.reason} "
            "(--role-name names a role you may assume there, with the control's S3 actions "
            "and the bucket's tagging)"
        ) from error


# -- reporting ---------------------------------------------------------------------------------


def as_json(found: Plan, done: Done | None) -> list[dict[str, Any]]:
    """One object per record rolled back (or, in a dry run, that would be)."""
    exemption = None
    if found.exemption is not None:
        exemption = {
            "bucket": found.exemption.bucket,
            "tags_before": found.exemption.before,
            "tags_after": found.exemption.after,
        }
    after = done.restored if done else found.target.expected
    return [
        {
            "audit_id": record.audit_id,
            "bucket": record.subject,
            "control": record.control.id,
            "scope": record.control.scope,
            "status": "rolled-back" if done else "planned",
            "before": found.now,
            "after": after,
            "reason": summary(record),
            "exemption": exemption,
            "warnings": found.warnings,
            "rollback_audit_id": done.rollback_ids.get(record.audit_id) if done else None,
            "dry_run": done is None,
        }
        for record in found.records
    ]


def summary(record: Record) -> str:
    fixed = record.item.get("fix_time") or "an unknown time"
    return (
        f"the {record.control.surface} of {record.subject} as before the fix at {fixed} "
        f"(audit record {record.audit_id})"
    )
