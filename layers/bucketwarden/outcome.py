"""The result of one control on one bucket, as printed, audited, notified and counted."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    REMEDIATED = "remediated"
    EXEMPTED = "exempted"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    FAILED = "failed"


# Outcomes worth a person's attention: audited and notified.
REPORTED = frozenset({Status.NONCOMPLIANT, Status.REMEDIATED, Status.EXEMPTED, Status.FAILED})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outcome:
    """What happened to one control on one subject: the unit of audit, notification and output."""

    bucket: str | None
    control: str | None
    status: Status
    reason: str
    before: Any = None
    after: Any = None
    event_id: str | None = None
    event_name: str | None = None
    event_time: str | None = None
    actor: str | None = None
    source_ip: str | None = None
    # Where the subject is: its account (the hub's or a member's) and region; None when unknown.
    account: str | None = None
    region: str | None = None
    mode: str | None = None
    # What `bucket` names: a bucket, an account ("account") or an access point ("access-point").
    scope: str = "bucket"
    found_by: str = "event"
    fix_time: str | None = None
    time_to_remediate_ms: int | None = None
    audit_id: str | None = None
    notified: bool = False
    # The flap breaker held this fix back: another actor keeps undoing it (see flap.py).
    flapping: bool = False
    # Set on the first held outcome of a streak (or a daily digest of a hold that lasts, or the
    # first flapping fix of a public-exposure control in a window): what people are sent.
    escalation: str | None = None
    # While held (flap.py): since when, when people were last told, drifts held back so far.
    held_since: str | None = None
    held_told_at: str | None = None
    held_drifts: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        known["status"] = Status(known["status"])
        return cls(**known)
