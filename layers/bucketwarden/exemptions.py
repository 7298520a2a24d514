"""Exemptions by bucket tag (`<key>` = all | control ids, `<key>-reason`, `<key>-until`) and by
a central allowlist in an SSM parameter (bucket name patterns → controls, reason, until).

An exemption is honoured only from a source `ExemptionSource` allows, with a reason, and within
`MaxExemptionDays`: an end date further away is not honoured, and without an end date it lapses
that many days after the audit table first recorded it. A broken allowlist exempts nothing: its
problem is reported and the bucket is judged as any other.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code
from bucketwarden.settings import ExemptionSource, Settings

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


@dataclass(frozen=True)
class ExemptionCheck:
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


@dataclass(frozen=True)
class Grant:
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


@dataclass(frozen=True)
class AllowlistEntry:
    """One entry of the central exemption allowlist (an SSM parameter a person deployed)."""

    patterns: tuple[str, ...]  # bucket name patterns (fnmatch: *, ?, [...])
    controls: frozenset[str]  # control ids, or {"all"}
    reason: str
    until: str
    number: int  # its position in the list, from 1, to name it in notes

    def grant(self, where: str) -> Grant:
        controls = tuple(sorted(self.controls))
        key = json.dumps(["allowlist", list(self.patterns), controls, self.reason])
        return Grant(where, controls, self.reason, self.until, key)

    def matches(self, bucket: str, control_id: str) -> bool:
        covered = "all" in self.controls or control_id in self.controls
        return covered and any(fnmatch.fnmatchcase(bucket, p) for p in self.patterns)


@dataclass(frozen=True)
class Allowlist:
    """The central exemption allowlist as read, or why it could not be used."""

    entries: tuple[AllowlistEntry, ...] = ()
    # Why the parameter (or nothing of it) could not be used; reported with each finding.
    problem: str | None = None


def _names(value: Any, field_name: str, number: int) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"entry {number}: {field_name!r} must be a name or a list of names")
    return tuple(name.strip() for name in names)


def _entry(raw: Any, number: int) -> AllowlistEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"entry {number}: expected an object")
    return AllowlistEntry(
        patterns=_names(raw.get("buckets"), "buckets", number),
        controls=frozenset(n.lower() for n in _names(raw.get("controls"), "controls", number)),
        reason=str(raw.get("reason") or "").strip(),
        until=str(raw.get("until") or "").strip(),
        number=number,
    )


def parse_allowlist(text: str, name: str) -> Allowlist:
    """The allowlist: {"exemptions": [{"buckets", "controls", "reason", "until"}, ...]}."""
    try:
        document = json.loads(text)
        raw = document.get("exemptions") if isinstance(document, dict) else document
        if not isinstance(raw, list):
            raise ValueError('expected {"exemptions": [...]}')
        return Allowlist(tuple(_entry(item, n) for n, item in enumerate(raw, start=1)))
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


def check_allowlist(
    allowlist: Allowlist,
    bucket: str,
    control_id: str,
    settings: Settings,
    today: date,
    *,
    first_recorded: FirstRecorded | None = None,
) -> ExemptionCheck:
    if allowlist.problem:
        return ExemptionCheck(False, allowlist.problem)
    entry = next((e for e in allowlist.entries if e.matches(bucket, control_id)), None)
    if entry is None:
        return ExemptionCheck(False)
    where = f"allowlist {settings.exemptions_parameter} entry {entry.number}"
    if not entry.reason:
        return ExemptionCheck(False, f"exemption ignored: {where} has no reason")
    return honoured(entry.grant(where), settings, today, first_recorded, f"{where} until")
