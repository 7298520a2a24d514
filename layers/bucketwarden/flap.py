"""The flap breaker: stop fighting another actor that keeps undoing a fix.

Infrastructure-as-code that declares a bucket differently, or a script on a schedule, reverts a
fix as fast as the service makes it. Past `flap_threshold` fixes of one bucket and control within
`flap_window_minutes`, the pair is held: drift is reported, not fixed, and one escalation names
the actors that keep reverting it. Held outcomes are audited with `flapping`, so the hold lasts
while reverts keep coming and lifts once the pair has been quiet for a whole window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bucketwarden import audit
from bucketwarden.aws import client
from bucketwarden.outcome import Status
from bucketwarden.settings import Settings


@dataclass(frozen=True)
class FlapVerdict:
    hold: bool
    # The first hold of a streak: the one that is escalated.
    escalate: bool = False
    fixes: int = 0
    # Who made the drifts the window's records answered, most frequent first.
    actors: tuple[str, ...] = ()


def judge(records: Iterable[dict[str, Any]], threshold: int) -> FlapVerdict:
    """The verdict for one bucket and control, from its audit records within the window."""
    records = list(records)
    fixes = sum(record["status"] == Status.REMEDIATED.value for record in records)
    already_held = any(record["flapping"] for record in records)
    if threshold == 0 or (fixes < threshold and not already_held):
        return FlapVerdict(hold=False, fixes=fixes)
    actors = Counter(principal(record["actor"]) for record in records if record["actor"])
    return FlapVerdict(
        hold=True,
        escalate=not already_held,
        fixes=fixes,
        actors=tuple(actor for actor, _ in actors.most_common()),
    )


def principal(actor: str) -> str:
    """An assumed role without its session name: each CI run names its session differently."""
    if ":assumed-role/" in actor:
        return actor.rsplit("/", 1)[0] if actor.count("/") >= 2 else actor
    return actor


def check(bucket: str, control: str, now: datetime, settings: Settings) -> FlapVerdict:
    """Read the pair's records of the last window (one Query) and judge them. Without an audit
    table there is no breaker, and no DynamoDB client is made. Only records whose integrity tag
    verifies count: a forged `flapping` record, or one dated in the future, holds nothing."""
    if settings.flap_threshold == 0 or not settings.audit_table:
        return FlapVerdict(hold=False)
    since = now - timedelta(minutes=settings.flap_window_minutes)
    dynamodb = client("dynamodb")
    table = settings.audit_table
    records = audit.recent(dynamodb, table, bucket, control, since, settings=settings)
    return judge(records, settings.flap_threshold)


def held_reason(verdict: FlapVerdict, settings: Settings) -> str:
    actors = ", ".join(verdict.actors) or "an unknown principal"
    return (
        f"not fixed: the flap breaker holds it after {verdict.fixes} fixes within "
        f"{settings.flap_window_minutes} minutes, undone each time by {actors}; fixing resumes "
        f"after {settings.flap_window_minutes} quiet minutes"
    )


def escalation(verdict: FlapVerdict, control: str, subject: str, settings: Settings) -> str:
    actor = verdict.actors[0] if verdict.actors else "an unknown principal"
    return (
        f"BucketWarden stopped fixing {control} on {subject}: undone {verdict.fixes} times in "
        f"{settings.flap_window_minutes} minutes by {actor}"
    )


ADVICE = (
    "Another actor keeps undoing this fix (often infrastructure-as-code that declares the "
    "bucket differently). Change that source to the baseline, or exempt the bucket with a "
    "reason; until then BucketWarden reports this drift without fixing it."
)
