"""Exemptions by bucket tag (`<key>` = all | control ids, `<key>-reason`, `<key>-until`) and by
a central allowlist in an SSM parameter (bucket name patterns → controls, reason, until).

An exemption is honoured only with a reason and, if it has an end date, before that date. A
broken allowlist exempts nothing: its problem is reported and the bucket is judged as any other.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code
from bucketwarden.settings import Settings

# Tag values may not allow commas everywhere, so spaces, "+" and "/" separate control ids too.
_SEPARATORS = re.compile(r"[,\s+/]+")
NO_TAGS = frozenset({"NoSuchTagSet", "NoSuchTagSetError"})


@dataclass(frozen=True)
class ExemptionCheck:
    exempt: bool
    # Why it is or is not honoured; None when the bucket has no exemption for the control.
    note: str | None = None


def read_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        response = s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in NO_TAGS:
            return {}
        raise
    # An empty value may come back without a Value element.
    return {tag["Key"]: tag.get("Value", "") for tag in response.get("TagSet", [])}


def check(tags: dict[str, str], control_id: str, settings: Settings, today: date) -> ExemptionCheck:
    value = tags.get(settings.exempt_tag_key)
    if value is None:
        return ExemptionCheck(False)
    targets = {part.lower() for part in _SEPARATORS.split(value) if part}
    if "all" not in targets and control_id not in targets:
        return ExemptionCheck(False)
    reason = tags.get(settings.exempt_reason_key, "").strip()
    if not reason:
        return ExemptionCheck(
            False, f"exemption ignored: tag {settings.exempt_reason_key} is missing or empty"
        )
    until = tags.get(settings.exempt_until_key, "").strip()
    return _honoured_until(until, reason, today, settings.exempt_until_key, source="")


def _honoured_until(
    until: str, reason: str, today: date, until_name: str, source: str
) -> ExemptionCheck:
    """Whether an exemption with a reason holds today; `source` names a non-tag origin."""
    by = f" by {source}" if source else ""
    if not until:
        return ExemptionCheck(True, f"exempt{by}: {reason}")
    try:
        end = date.fromisoformat(until[:10])
    except ValueError:
        return ExemptionCheck(False, f"exemption ignored: {until_name}={until!r} is not a date")
    if end < today:
        return ExemptionCheck(False, f"exemption{by} expired on {end.isoformat()}")
    return ExemptionCheck(True, f"exempt{by} until {end.isoformat()}: {reason}")


# -- the central allowlist -----------------------------------------------------------------------

# Warm invocations reuse the allowlist for this long: one GetParameter per cold start and then
# at most one every five minutes, while an edit reaches every function within five minutes.
ALLOWLIST_MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class AllowlistEntry:
    patterns: tuple[str, ...]  # bucket name patterns (fnmatch: *, ?, [...])
    controls: frozenset[str]  # control ids, or {"all"}
    reason: str
    until: str
    number: int  # its position in the list, from 1, to name it in notes

    def matches(self, bucket: str, control_id: str) -> bool:
        covered = "all" in self.controls or control_id in self.controls
        return covered and any(fnmatch.fnmatchcase(bucket, p) for p in self.patterns)


@dataclass(frozen=True)
class Allowlist:
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
def _provider(ssm: Any) -> SSMProvider:
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
    allowlist: Allowlist, bucket: str, control_id: str, settings: Settings, today: date
) -> ExemptionCheck:
    if allowlist.problem:
        return ExemptionCheck(False, allowlist.problem)
    entry = next((e for e in allowlist.entries if e.matches(bucket, control_id)), None)
    if entry is None:
        return ExemptionCheck(False)
    where = f"allowlist {settings.exemptions_parameter} entry {entry.number}"
    if not entry.reason:
        return ExemptionCheck(False, f"exemption ignored: {where} has no reason")
    return _honoured_until(entry.until, entry.reason, today, f"{where} until", source=where)
