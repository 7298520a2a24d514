"""Exemption grants as the audit table holds them: when each was first recorded, and what a
bucket tagging call changed.

Records of the pseudo-control `exemption` hold, in `after`, the grant in effect from then on
(None once the tags are removed). They are read through audit.py's bucket index queries, so
only records those accept count. A grant's days (MaxExemptionDays, for a grant without an end
date) count from its earliest record: removing the tags and putting the same ones back does not
start the clock again; a new reason is a new grant, and its change is audited and notified.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple

from bucketwarden.exemptions import Grant, check, tag_grant
from bucketwarden.outcome import Status
from bucketwarden.settings import Settings


def first_recorded(records: list[dict[str, Any]], grant: Grant) -> date | None:
    """The day of the grant's earliest record (records oldest first), None when never recorded."""
    for record in records:
        after = record.get("after")
        if isinstance(after, dict) and after.get("grant") == grant.key:
            return datetime.fromisoformat(str(record["recorded_at"])).date()
    return None


def last_tag_grant(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The tag grant the latest tag record left in effect (None: none, or removed)."""
    for record in reversed(records):
        after = record.get("after")
        if after is None or (isinstance(after, dict) and after.get("source") == "tags"):
            return after
    return None


class Change(NamedTuple):
    """What a bucket tagging call did to the bucket's exemption, as judged from fresh tags."""

    verb: str  # granted, changed, removed
    status: Status
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    warnings: tuple[str, ...] = ()


def judge_change(
    tags: dict[str, str],
    previous: dict[str, Any] | None,
    records: list[dict[str, Any]],
    settings: Settings,
    today: date,
) -> Change | None:
    """The change of exemption from the last recorded grant to the tags now (None: no change).

    A grant is `exempted` when honoured, `noncompliant` when not (with why); a removal is
    `compliant`. Every change names its grant's controls, reason and end date.
    """
    grant = tag_grant(tags, settings)
    after = grant.to_record() if grant else None
    if after == previous:
        return None
    if grant is None:
        was = describe(previous)
        reason = f"exemption removed ({was}): the bucket is under every control again"
        return Change("removed", Status.COMPLIANT, reason, previous, None)
    verb = "granted" if previous is None else "changed"
    verdict = _verdict(grant, tags, records, settings, today)
    status = Status.EXEMPTED if verdict[0] else Status.NONCOMPLIANT
    honoured = "honoured" if verdict[0] else "not honoured"
    reason = f"exemption {verb} ({describe(after)}): {honoured}: {verdict[1]}"
    return Change(verb, status, reason, previous, after, _unknown_controls(grant))


def _verdict(
    grant: Grant,
    tags: dict[str, str],
    records: list[dict[str, Any]],
    settings: Settings,
    today: date,
) -> tuple[bool, str]:
    if not grant.controls:
        return False, f"tag {settings.exempt_tag_key} names no control"
    # The grant's own record (this change) is its first when there is no earlier one.
    found = check(
        tags,
        grant.controls[0],
        settings,
        today,
        first_recorded=lambda g: first_recorded(records, g) or today,
    )
    return found.exempt, str(found.note)


def _unknown_controls(grant: Grant) -> tuple[str, ...]:
    # Imported here: the catalogue imports the controls, which read audit records, whose
    # integrity check notifies, and notifications describe grants.
    from bucketwarden.catalogue import CONTROL_IDS

    unknown = [c for c in grant.controls if c != "all" and c not in CONTROL_IDS]
    if not unknown:
        return ()
    return (f"unknown control ids exempt nothing: {', '.join(unknown)}",)


def describe(grant: dict[str, Any] | None) -> str:
    """ "public-acl, versioning; reason 'site'; until 2027-01-31" for people."""
    if not grant:
        return "no exemption"
    controls = ", ".join(grant.get("controls") or []) or "no control"
    until = grant.get("until") or "no end date"
    return f"{controls}; reason {grant.get('reason')!r}; until {until}; by {grant.get('source')}"
