"""The flap breaker: stop fighting another actor that keeps undoing a fix.

Infrastructure-as-code that declares a bucket differently, or a script on a schedule, reverts a
fix as fast as the service makes it. Past `flap_threshold` fixes of one bucket and control within
`flap_window_minutes`, the pair is held: drift is reported, not fixed, and one escalation names
the actors that keep reverting it. Held outcomes are audited with `flapping`, so the hold lasts
while reverts keep coming and lifts once the pair has been quiet for a whole window.

A hold never lasts silently: each held record carries when the hold began (`held_since`), when
people were last told (`held_told_at`) and how many drifts it held back (`held_drifts`), copied
forward from the newest held record of the window. The first held drift 24 hours or more after
the last message is sent again as a digest. All of it comes from the one Query the verdict
already makes: no DynamoDB call is added per event.

Controls that close public exposure (`closes_public_exposure` on the control) are never held:
an outsider who re-opens a bucket often enough must not buy it a pause. They are fixed every
time; past the threshold the fix carries one escalation naming the actors, marked `flapping` in
its record so that the rest of the window's fixes are not escalated again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bucketwarden.audit import AuditStore
from bucketwarden.outcome import Status, utc_now
from bucketwarden.settings import Settings

# A held pair is notified again once its last message is this old.
DIGEST_INTERVAL = timedelta(hours=24)


class FlapVerdict(NamedTuple):
    """Whether a (bucket, control) pair is flapping: hold its fixes, escalate, tell again."""

    hold: bool
    # The first hold of a streak, or the first flapping fix of a public-exposure control in the
    # window: the one that is escalated.
    escalate: bool = False
    fixes: int = 0
    # Who made the drifts the window's records answered, most frequent first.
    actors: tuple[str, ...] = ()
    # A held pair whose last message is DIGEST_INTERVAL old: people are told again.
    digest: bool = False
    # While held: since when, when people were last told, and drifts held back (this one too).
    held_since: str | None = None
    told_at: str | None = None
    drifts: int = 0


def judge(
    records: Iterable[dict[str, Any]],
    threshold: int,
    *,
    never_hold: bool = False,
    now: datetime | None = None,
) -> FlapVerdict:
    """The verdict for one bucket and control, from its audit records within the window (oldest
    first). `never_hold` for controls that close public exposure: escalated, never held."""
    records = list(records)
    fixes = sum(record["status"] == Status.REMEDIATED.value for record in records)
    flagged = [record for record in records if record["flapping"]]
    if threshold == 0 or (fixes < threshold and not flagged):
        return FlapVerdict(hold=False, fixes=fixes)
    actors = Counter(principal(record["actor"]) for record in records if record["actor"])
    named = tuple(actor for actor, _ in actors.most_common())
    if never_hold:
        # A flagged record in the window is this window's escalation: one is enough.
        escalate = fixes >= threshold and not flagged
        return FlapVerdict(hold=False, escalate=escalate, fixes=fixes, actors=named)
    return _held(flagged[-1] if flagged else None, fixes, named, now or utc_now())


def _held(
    newest: dict[str, Any] | None, fixes: int, actors: tuple[str, ...], now: datetime
) -> FlapVerdict:
    """A hold: begun now (escalated), or carried on from the newest held record of the window."""
    stamp = now.isoformat(timespec="milliseconds")
    if newest is None:
        return FlapVerdict(True, True, fixes, actors, held_since=stamp, told_at=stamp, drifts=1)
    # Records from before these fields: the hold is as old as the record, and was told then.
    since = newest.get("held_since") or newest["recorded_at"]
    told = newest.get("held_told_at") or newest["recorded_at"]
    digest = _digest_due(told, now)
    return FlapVerdict(
        hold=True,
        fixes=fixes,
        actors=actors,
        digest=digest,
        held_since=since,
        told_at=stamp if digest else told,
        drifts=_count(newest.get("held_drifts")) + 1,
    )


def _digest_due(told_at: str, now: datetime) -> bool:
    """Is the last message DIGEST_INTERVAL old? A time that is not one, or in the future, cannot
    be believed: people are told rather than left uninformed."""
    try:
        told = datetime.fromisoformat(told_at)
    except ValueError:
        return True
    if told.tzinfo is None or told > now:
        return True
    return now - told >= DIGEST_INTERVAL


def _count(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() else 1


def principal(actor: str) -> str:
    """An assumed role without its session name: each CI run names its session differently."""
    if ":assumed-role/" in actor:
        return actor.rsplit("/", 1)[0] if actor.count("/") >= 2 else actor
    return actor


def check(
    store: AuditStore,
    bucket: str,
    control: str,
    now: datetime,
    settings: Settings,
    *,
    never_hold: bool = False,
) -> FlapVerdict:
    """Read the pair's records of the last window (one Query) and judge them. Without an audit
    table there is no breaker, and DynamoDB is not asked. Only records whose integrity tag
    verifies count: a forged `flapping` record, or one dated in the future, holds nothing."""
    if settings.flap_threshold == 0 or not store.table:
        return FlapVerdict(hold=False)
    since = now - timedelta(minutes=settings.flap_window_minutes)
    records = store.recent(bucket, control, since)
    return judge(records, settings.flap_threshold, never_hold=never_hold, now=now)


def _actors(verdict: FlapVerdict) -> str:
    return ", ".join(verdict.actors) or "an unknown principal"


def held_reason(verdict: FlapVerdict, settings: Settings) -> str:
    actors = _actors(verdict)
    return (
        f"not fixed: the flap breaker holds it after {verdict.fixes} fixes within "
        f"{settings.flap_window_minutes} minutes, undone each time by {actors}; fixing resumes "
        f"after {settings.flap_window_minutes} quiet minutes"
    )


def escalation(verdict: FlapVerdict, control: str, subject: str, settings: Settings) -> str:
    return (
        f"BucketWarden stopped fixing {control} on {subject}: undone {verdict.fixes} times in "
        f"{settings.flap_window_minutes} minutes by {_actors(verdict)}"
    )


def digest(verdict: FlapVerdict, control: str, subject: str) -> str:
    """The daily reminder of a hold that lasts."""
    return (
        f"BucketWarden still holds {control} on {subject}: not fixed since {verdict.held_since}, "
        f"{verdict.drifts} drifts held back, by {_actors(verdict)}"
    )


def public_escalation(verdict: FlapVerdict, control: str, subject: str, settings: Settings) -> str:
    """A public-exposure control that keeps being re-opened: fixed anyway, escalated once."""
    return (
        f"BucketWarden fixed {control} on {subject} again: undone {verdict.fixes} times in "
        f"{settings.flap_window_minutes} minutes by {_actors(verdict)}; public exposure is "
        "fixed every time, never held"
    )


PUBLIC_ADVICE = (
    "Someone keeps re-opening public access here. BucketWarden closes it every time and says "
    "so once per window: find out why these principals re-open it, and take away their "
    "permission to if it is not on purpose."
)

ADVICE = (
    "Another actor keeps undoing this fix (often infrastructure-as-code that declares the "
    "bucket differently). Change that source to the baseline, or exempt the bucket with a "
    "reason; until then BucketWarden reports this drift without fixing it."
)
