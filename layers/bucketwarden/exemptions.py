"""Exemptions by bucket tag (`<key>` = all | control ids, `<key>-reason`, `<key>-until`) and by
a central allowlist in an SSM parameter (bucket name patterns → controls, reason, until; scoped
to accounts and organizational units or not), which also holds modes per account or OU.

An exemption is honoured only from a source `ExemptionSource` allows, with a reason, and within
`MaxExemptionDays`: an end date further away is not honoured, and without an end date it lapses
that many days after the audit table first recorded it. A broken allowlist (a key it does not
know, an id that is not one, a mode that is not one) exempts nothing and changes no mode: its
problem is reported and the bucket is judged as any other.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from bucketwarden.accounts import ACCOUNT_ID
from bucketwarden.aws import client, error_code
from bucketwarden.organization import UNIT_ID, PlacementLookup, Scope, no_organization
from bucketwarden.settings import ExemptionSource, Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

# Tag values may not allow commas everywhere, so spaces, "+" and "/" separate control ids too.
_SEPARATORS = re.compile(r"[,\s+/]+")
NO_TAGS = frozenset({"NoSuchTagSet", "NoSuchTagSetError"})

# Bucket tagging calls: each may grant, change or remove an exemption, so each is read (the
# bucket's tags, fresh) and, when the exemption changed, audited and notified under this
# pseudo-control id (`bucketwarden history --control exemption`). A grant first seen on a drift
# (tagged before BucketWarden watched, or an allowlist entry) is recorded under it too.
CHANGE_EVENTS = ("PutBucketTagging", "DeleteBucketTagging")
CHANGE_CONTROL = "exemption"
# The function that handles them (GetBucketTagging is all they need, which every role has): the
# public-access family, whose controls exemptions matter most to.
CHANGE_FAMILY = "public-access"


class ExemptionCheck(NamedTuple):
    """Whether a bucket's exemption for a control is honoured, and why."""

    exempt: bool
    # Why it is or is not honoured; None when the bucket has no exemption for the control.
    note: str | None = None


def read_tags(s3: S3Client, bucket: str) -> dict[str, str]:
    try:
        response = s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in NO_TAGS:
            return {}
        raise
    # An empty value may come back without a Value element.
    return {tag["Key"]: tag.get("Value", "") for tag in response.get("TagSet", [])}


class Grant(NamedTuple):
    """One exemption as granted: where from, which controls, why, and until when."""

    source: str  # "tags", or the allowlist entry that grants it
    controls: tuple[str, ...]  # control ids as written (lower case, sorted), or ("all",)
    reason: str
    until: str
    # What it exempts and why, across records and events: a new reason is a new grant, whose
    # days count afresh (and whose change is audited and notified like any other).
    key: str

    def covers(self, control_id: str) -> bool:
        return "all" in self.controls or control_id in self.controls

    def to_record(self) -> dict[str, Any]:
        """The grant as an audit record's `before` or `after` holds it."""
        return {
            "grant": self.key,
            "source": self.source,
            "controls": list(self.controls),
            "reason": self.reason,
            "until": self.until or None,
        }


# When a grant was first recorded in the audit table (asked only for a grant without `until`).
FirstRecorded = Callable[[Grant], date]


def tag_grant(tags: dict[str, str], settings: Settings) -> Grant | None:
    """The exemption the bucket's tags ask for, honoured or not; None without the tag."""
    value = tags.get(settings.exempt_tag_key)
    if value is None:
        return None
    controls = tuple(sorted({part.lower() for part in _SEPARATORS.split(value) if part}))
    reason = tags.get(settings.exempt_reason_key, "").strip()
    until = tags.get(settings.exempt_until_key, "").strip()
    key = json.dumps(["tags", controls, reason])
    return Grant("tags", controls, reason, until, key)


def check(
    tags: dict[str, str],
    control_id: str,
    settings: Settings,
    today: date,
    first_recorded: FirstRecorded | None = None,
) -> ExemptionCheck:
    grant = tag_grant(tags, settings)
    if grant is None or not grant.covers(control_id):
        return ExemptionCheck(False)
    if settings.exemption_source is ExemptionSource.ALLOWLIST:
        return ExemptionCheck(
            False,
            f"exemption ignored: tag {settings.exempt_tag_key} is not honoured because "
            "ExemptionSource is allowlist (only the central allowlist exempts)",
        )
    if not grant.reason:
        return ExemptionCheck(
            False, f"exemption ignored: tag {settings.exempt_reason_key} is missing or empty"
        )
    return honoured(grant, settings, today, first_recorded, settings.exempt_until_key)


def honoured(
    grant: Grant,
    settings: Settings,
    today: date,
    first_recorded: FirstRecorded | None,
    until_name: str,
) -> ExemptionCheck:
    """Whether a grant with a reason holds today, within MaxExemptionDays."""
    by = "" if grant.source == "tags" else f" by {grant.source}"
    if not grant.until:
        return _open_ended(grant, settings, today, first_recorded, by)
    try:
        end = date.fromisoformat(grant.until[:10])
    except ValueError:
        return ExemptionCheck(
            False, f"exemption ignored: {until_name}={grant.until!r} is not a date"
        )
    if end < today:
        return ExemptionCheck(False, f"exemption{by} expired on {end.isoformat()}")
    limit = settings.max_exemption_days
    latest = today + timedelta(days=limit)
    if limit and end > latest:
        return ExemptionCheck(
            False,
            f"exemption ignored: {until_name}={end.isoformat()} is more than MaxExemptionDays "
            f"({limit}) away; the latest end date honoured today is {latest.isoformat()}",
        )
    return ExemptionCheck(True, f"exempt{by} until {end.isoformat()}: {grant.reason}")


def _open_ended(
    grant: Grant, settings: Settings, today: date, first_recorded: FirstRecorded | None, by: str
) -> ExemptionCheck:
    """A grant without an end date lapses MaxExemptionDays after it was first recorded."""
    limit = settings.max_exemption_days
    if not limit:
        return ExemptionCheck(True, f"exempt{by}: {grant.reason}")
    first = first_recorded(grant) if first_recorded else today
    lapses = first + timedelta(days=limit)
    if today >= lapses:
        return ExemptionCheck(
            False,
            f"exemption{by} lapsed on {lapses.isoformat()}: it has no end date and was first "
            f"recorded on {first.isoformat()}, more than MaxExemptionDays ({limit}) ago",
        )
    return ExemptionCheck(
        True,
        f"exempt{by}: {grant.reason} (no end date: lapses on {lapses.isoformat()}, "
        f"MaxExemptionDays ({limit}) after it was first recorded)",
    )


# -- the central allowlist -----------------------------------------------------------------------

# Warm invocations reuse the allowlist for this long: one GetParameter per cold start and then
# at most one every five minutes, while an edit reaches every function within five minutes.
ALLOWLIST_MAX_AGE_SECONDS = 300


# The keys the allowlist knows. Any other is refused, with the whole parameter: a misspelt
# `accounts` would otherwise make an entry meant for one account apply to every account.
DOCUMENT_KEYS = frozenset({"exemptions", "modes"})
SCOPE_KEYS = ("accounts", "organizational_units")
ENTRY_KEYS = frozenset({"buckets", "controls", "reason", "until", *SCOPE_KEYS})
MODE_KEYS = frozenset({"controls", "mode", "reason", *SCOPE_KEYS})
# How much each mode does: an allowlist entry may ask as much as the stack's mode, or less.
_STRENGTH = {Mode.OFF: 0, Mode.NOTIFY: 1, Mode.REMEDIATE: 2}


class AllowlistEntry(NamedTuple):
    """One entry of the central exemption allowlist (an SSM parameter a person deployed)."""

    patterns: tuple[str, ...]  # bucket name patterns (fnmatch: *, ?, [...])
    controls: frozenset[str]  # control ids, or {"all"}
    reason: str
    until: str
    number: int  # its position in the list, from 1, to name it in notes
    # The accounts and OUs it is for (none named: every account).
    scope: Scope = Scope()

    def grant(self, where: str) -> Grant:
        controls = tuple(sorted(self.controls))
        key = json.dumps(["allowlist", list(self.patterns), controls, self.reason])
        return Grant(where, controls, self.reason, self.until, key)

    def matches(self, bucket: str, control_id: str) -> bool:
        covered = "all" in self.controls or control_id in self.controls
        return covered and any(fnmatch.fnmatchcase(bucket, p) for p in self.patterns)


class ModeEntry(NamedTuple):
    """The mode of some controls in some accounts or OUs (never in every account: the stack's
    parameters say that)."""

    scope: Scope
    controls: frozenset[str]  # control ids, or {"all"}
    mode: Mode
    reason: str
    number: int

    def covers(self, control_id: str) -> bool:
        return "all" in self.controls or control_id in self.controls


class Allowlist(NamedTuple):
    """The central exemption allowlist as read, or why it could not be used."""

    entries: tuple[AllowlistEntry, ...] = ()
    # Why the parameter (or nothing of it) could not be used; reported with each finding.
    problem: str | None = None
    modes: tuple[ModeEntry, ...] = ()


class ModeChoice(NamedTuple):
    """A control's mode in an account: `by` names the allowlist entry that set it (None: the
    stack's); `warning` says why an entry that would have was not applied."""

    mode: Mode
    by: str | None = None
    warning: str | None = None


def _names(value: Any, field_name: str, where: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: {field_name!r} must be a name or a list of names")
    return tuple(name.strip() for name in names)


def _known_keys(raw: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )


def _ids(raw: dict[str, Any], field_name: str, where: str, what: str) -> frozenset[str]:
    """The account or OU ids an entry names under `field_name` (none when it has no such key)."""
    if field_name not in raw:
        return frozenset()
    pattern = ACCOUNT_ID if field_name == "accounts" else UNIT_ID
    ids = _names(raw[field_name], field_name, where)
    wrong = next((found for found in ids if not pattern.match(found)), None)
    if wrong is not None:
        raise ValueError(f"{where}: {field_name!r} holds {wrong!r}, which is not {what}")
    return frozenset(ids)


def _scope(raw: dict[str, Any], where: str) -> Scope:
    return Scope(
        accounts=_ids(raw, "accounts", where, "a 12-digit AWS account id"),
        units=_ids(raw, "organizational_units", where, "an organizational unit id (ou-...)"),
    )


def _object(raw: Any, known: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    _known_keys(raw, known, where)
    return raw


def _entry(raw: Any, number: int) -> AllowlistEntry:
    where = f"entry {number}"
    found = _object(raw, ENTRY_KEYS, where)
    return AllowlistEntry(
        patterns=_names(found.get("buckets"), "buckets", where),
        controls=frozenset(n.lower() for n in _names(found.get("controls"), "controls", where)),
        reason=str(found.get("reason") or "").strip(),
        until=str(found.get("until") or "").strip(),
        number=number,
        scope=_scope(found, where),
    )


def _mode_entry(raw: Any, number: int) -> ModeEntry:
    where = f"modes entry {number}"
    found = _object(raw, MODE_KEYS, where)
    scope = _scope(found, where)
    if scope.everywhere:
        raise ValueError(
            f"{where}: name 'accounts' or 'organizational_units' (the stack's parameters set "
            "the mode of every account)"
        )
    reason = found.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{where}: 'reason' must say why")
    return ModeEntry(
        scope=scope,
        controls=_control_ids(found.get("controls"), where),
        mode=_mode(found.get("mode"), where),
        reason=reason.strip(),
        number=number,
    )


def _control_ids(value: Any, where: str) -> frozenset[str]:
    # Imported here: the catalogue imports this module (the exemption change events).
    from bucketwarden.catalogue import CONTROL_IDS

    controls = frozenset(n.lower() for n in _names(value, "controls", where))
    unknown = sorted(controls - {"all", *CONTROL_IDS})
    if unknown:
        raise ValueError(f"{where}: unknown control {', '.join(map(repr, unknown))}")
    return controls


def _mode(value: Any, where: str) -> Mode:
    try:
        return Mode(value.strip().lower() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise ValueError(f"{where}: 'mode' {value!r} is not one of {allowed}") from None


def _sections(document: Any) -> tuple[list[Any], list[Any]]:
    """The exemptions and the modes (either may be left out; a bare list is the exemptions)."""
    if isinstance(document, list):
        return document, []
    if not isinstance(document, dict):
        raise ValueError('expected {"exemptions": [...]}')
    _known_keys(document, DOCUMENT_KEYS, "the document")
    exemptions = document.get("exemptions", [] if "modes" in document else None)
    modes = document.get("modes", [])
    if not isinstance(exemptions, list):
        raise ValueError('expected {"exemptions": [...]}')
    if not isinstance(modes, list):
        raise ValueError('expected "modes": [...]')
    return exemptions, modes


def parse_allowlist(text: str, name: str) -> Allowlist:
    """The allowlist: {"exemptions": [{"buckets", "controls", "reason", "until", "accounts",
    "organizational_units"}, ...], "modes": [{"accounts", "organizational_units", "controls",
    "mode", "reason"}, ...]}. Anything it does not know rejects the whole of it."""
    try:
        exemptions, modes = _sections(json.loads(text))
        return Allowlist(
            entries=tuple(_entry(item, n) for n, item in enumerate(exemptions, start=1)),
            modes=tuple(_mode_entry(item, n) for n, item in enumerate(modes, start=1)),
        )
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        return Allowlist(problem=f"exemption allowlist {name} ignored: {error}")


@cache
def _provider(ssm: SSMClient) -> SSMProvider:
    # One provider (and so one cached value) per client: a new client starts afresh.
    return SSMProvider(boto3_client=ssm)


def load_allowlist(name: str) -> Allowlist:
    """The allowlist in SSM parameter `name`; any problem reading it exempts nothing."""
    try:
        text = _provider(client("ssm")).get(name, max_age=ALLOWLIST_MAX_AGE_SECONDS)
    except GetParameterError as error:
        return Allowlist(problem=f"exemption allowlist {name} could not be read: {error}")
    return parse_allowlist(str(text), name)


def _where(settings: Settings, kind: str, number: int, scope: Scope) -> str:
    """An entry as notes name it: `allowlist NAME entry 2 (account 111122223333)`."""
    scoped = "" if scope.everywhere else f" ({scope.describe()})"
    return f"allowlist {settings.exemptions_parameter} {kind} {number}{scoped}"


def check_allowlist(
    allowlist: Allowlist,
    bucket: str,
    control_id: str,
    settings: Settings,
    today: date,
    *,
    first_recorded: FirstRecorded | None = None,
    account: str | None = None,
    placement: PlacementLookup = no_organization,
) -> ExemptionCheck:
    """The first entry for the bucket and control whose scope covers `account` decides. An
    entry whose scope cannot be told (the account's OUs unknown) does not exempt: the note
    says why, unless a later entry decides."""
    if allowlist.problem:
        return ExemptionCheck(False, allowlist.problem)
    unverified: str | None = None
    for entry in allowlist.entries:
        if not entry.matches(bucket, control_id):
            continue
        where = _where(settings, "entry", entry.number, entry.scope)
        reach = entry.scope.reach(account, placement)
        if reach.applies:
            return _listed(entry, where, settings, today, first_recorded)
        if reach.problem and unverified is None:
            unverified = f"exemption not applied: {where}: {reach.problem}"
    return ExemptionCheck(False, unverified)


def _listed(
    entry: AllowlistEntry,
    where: str,
    settings: Settings,
    today: date,
    first_recorded: FirstRecorded | None,
) -> ExemptionCheck:
    if not entry.reason:
        return ExemptionCheck(False, f"exemption ignored: {where} has no reason")
    return honoured(entry.grant(where), settings, today, first_recorded, f"{where} until")


def scoped_mode(
    allowlist: Allowlist,
    control_id: str,
    stack_mode: Mode,
    settings: Settings,
    *,
    account: str | None,
    placement: PlacementLookup = no_organization,
) -> ModeChoice:
    """`control_id`'s mode in `account`: the first modes entry for the control whose scope
    covers the account, when it asks no more than the stack's mode; else the stack's."""
    if allowlist.problem:
        return ModeChoice(stack_mode, warning=allowlist.problem)
    unverified: str | None = None
    for entry in allowlist.modes:
        if not entry.covers(control_id):
            continue
        where = _where(settings, "modes entry", entry.number, entry.scope)
        reach = entry.scope.reach(account, placement)
        if reach.applies:
            return _chosen(entry, where, stack_mode)
        if reach.problem and unverified is None:
            unverified = f"mode not applied: {where}: {reach.problem}"
    return ModeChoice(stack_mode, warning=unverified)


def _chosen(entry: ModeEntry, where: str, stack_mode: Mode) -> ModeChoice:
    # The stack's mode is the most BucketWarden does: an entry cannot turn on what a person
    # deploying the stack left in notify or off (and an OU that cannot be told falls back to it).
    if _STRENGTH[entry.mode] > _STRENGTH[stack_mode]:
        warning = (
            f"mode not applied: {where} asks {entry.mode.value}, more than this stack's "
            f"{stack_mode.value}; an entry may only lower a control's mode"
        )
        return ModeChoice(stack_mode, warning=warning)
    return ModeChoice(entry.mode, by=f"{entry.mode.value} by {where}: {entry.reason}")
