"""The flap breaker: at most N fixes per bucket and control in M minutes, one escalation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden import flap, integrity
from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.public_access_block import SETTINGS
from bucketwarden.policy import analyze
from bucketwarden.settings import Settings
from bucketwarden_tools.stack import DEFAULT_MAC_KEY
from tests.helpers import (
    ACCOUNT,
    audit_items,
    audit_store,
    create_table,
    emitted_metrics,
    handle,
    make_bucket,
    only,
    own_client,
    s3,
    subscribe_inbox,
)

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"
CI_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci-terraform"
# How CloudTrail names the role's sessions, without the session name.
CI_SESSIONS = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-terraform"


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NOW_TEXT = NOW.isoformat(timespec="milliseconds")


def record(status: str, actor: str | None = CI_ROLE, flapping: bool = False) -> dict[str, Any]:
    return {"status": status, "actor": actor, "recorded_at": "", "flapping": flapping}


def held_record(since: datetime, told: datetime | str, drifts: int = 4) -> dict[str, Any]:
    """A held drift's record as the engine writes it: the hold it carries forward."""
    return {
        **record("noncompliant", flapping=True),
        "recorded_at": NOW_TEXT,
        "held_since": since.isoformat(timespec="milliseconds"),
        "held_told_at": told if isinstance(told, str) else told.isoformat(timespec="milliseconds"),
        "held_drifts": str(drifts),
    }


# -- the verdict -------------------------------------------------------------------------------


def test_fewer_fixes_than_the_threshold_are_not_held() -> None:
    verdict = flap.judge([record("remediated"), record("remediated")], threshold=3)
    assert verdict == flap.FlapVerdict(hold=False, fixes=2)


def test_the_threshold_reached_holds_and_escalates_naming_the_actors() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:user/alice"
    records = [record("remediated"), record("remediated", other), record("remediated")]
    verdict = flap.judge([*records, record("compliant", None)], threshold=3, now=NOW)
    assert verdict == flap.FlapVerdict(
        hold=True,
        escalate=True,
        fixes=3,
        actors=(CI_ROLE, other),
        held_since=NOW_TEXT,
        told_at=NOW_TEXT,
        drifts=1,
    )


def test_a_hold_in_the_window_keeps_holding_without_a_second_escalation() -> None:
    verdict = flap.judge([record("noncompliant", flapping=True)], threshold=3)
    assert (verdict.hold, verdict.escalate) == (True, False)


def test_a_hold_carries_its_start_and_counts_its_drifts() -> None:
    since = NOW - timedelta(hours=5)
    verdict = flap.judge([held_record(since, since, drifts=4)], threshold=3, now=NOW)
    assert (verdict.hold, verdict.escalate, verdict.digest) == (True, False, False)
    assert (verdict.held_since, verdict.drifts) == (since.isoformat(timespec="milliseconds"), 5)


def test_a_hold_told_24_hours_ago_is_digested() -> None:
    since = NOW - timedelta(days=3)
    told = NOW - timedelta(hours=24)
    verdict = flap.judge([held_record(since, told)], threshold=3, now=NOW)
    assert (verdict.hold, verdict.escalate, verdict.digest) == (True, False, True)
    assert verdict.told_at == NOW_TEXT


def test_a_hold_told_less_than_24_hours_ago_stays_quiet() -> None:
    told = NOW - timedelta(hours=23, minutes=59)
    verdict = flap.judge([held_record(told, told)], threshold=3, now=NOW)
    assert (verdict.hold, verdict.digest) == (True, False)
    assert verdict.told_at == told.isoformat(timespec="milliseconds")


@pytest.mark.parametrize("told", ["not a time", "2999-01-01T00:00:00.000+00:00"])
def test_a_last_message_time_that_cannot_be_believed_is_digested(told: str) -> None:
    verdict = flap.judge([held_record(NOW, told)], threshold=3, now=NOW)
    assert verdict.digest


def test_a_held_record_without_the_hold_fields_counts_from_its_own_time() -> None:
    old = {**record("noncompliant", flapping=True), "recorded_at": "2026-03-01T11:00:00+00:00"}
    verdict = flap.judge([old], threshold=3, now=NOW)
    assert (verdict.held_since, verdict.digest, verdict.drifts) == (old["recorded_at"], True, 2)


def test_public_exposure_is_never_held_and_escalated_once_per_window() -> None:
    fixes = [record("remediated")] * 3
    first = flap.judge(fixes, threshold=3, never_hold=True)
    assert first == flap.FlapVerdict(hold=False, escalate=True, fixes=3, actors=(CI_ROLE,))
    escalated = record("remediated", flapping=True)
    assert flap.judge([*fixes, escalated], threshold=3, never_hold=True) == flap.FlapVerdict(
        hold=False, fixes=4, actors=(CI_ROLE,)
    )


def test_public_exposure_below_the_threshold_is_fixed_quietly() -> None:
    verdict = flap.judge([record("remediated")] * 2, threshold=3, never_hold=True)
    assert verdict == flap.FlapVerdict(hold=False, fixes=2)


def test_a_forged_hold_does_not_hold_public_exposure() -> None:
    verdict = flap.judge([record("noncompliant", flapping=True)], threshold=3, never_hold=True)
    assert (verdict.hold, verdict.escalate) == (False, False)


def test_the_public_exposure_controls_say_so_in_the_catalogue() -> None:
    never_held = {c.id for c in CONTROLS if c.closes_public_exposure}
    assert never_held == {
        "account-public-access-block",
        "bucket-public-access-block",
        "public-acl",
        "public-policy",
        "access-point",
    }


def test_sessions_of_one_role_count_as_one_actor() -> None:
    runs = [record("remediated", f"{CI_SESSIONS}/run-{n}") for n in range(3)]
    assert flap.judge(runs, threshold=3).actors == (CI_SESSIONS,)


def test_threshold_zero_never_holds() -> None:
    assert not flap.judge([record("remediated")] * 10, threshold=0).hold


def test_no_audit_table_means_no_breaker() -> None:
    settings = Settings(audit_table=None)
    store = audit_store(settings)
    assert not flap.check(store, "b", "versioning", datetime.now(UTC), settings).hold


# -- end to end --------------------------------------------------------------------------------


def suspend(bucket: str) -> None:
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def revert_and_deliver(bucket: str, round_number: int) -> dict[str, Any]:
    """The CI role suspends versioning again; its event reaches the versioning function."""
    suspend(bucket)
    event_id = f"evt-flap-{round_number}"
    return only(
        handle("PutBucketVersioning", bucket, "versioning", event_id=event_id, issuer_arn=CI_ROLE)
    )


# The times an audit record holds of itself and of a hold: what time going by moves back.
RECORD_TIMES = ("recorded_at", "held_since", "held_told_at")


def age_audit_records(minutes: int) -> None:
    """Move every audit record `minutes` into the past, as if that much time went by: each is
    written again as BucketWarden would have written it then (tagged with its key)."""
    dynamodb = own_client("dynamodb")
    for item in dynamodb.scan(TableName=AUDIT_TABLE)["Items"]:
        times = [name for name in RECORD_TIMES if name in item]
        earlier = {**item, **{name: {"S": _earlier(item[name]["S"], minutes)} for name in times}}
        sealed = integrity.sealed(own_client("kms"), earlier, DEFAULT_MAC_KEY)
        dynamodb.put_item(TableName=AUDIT_TABLE, Item=sealed)


def _earlier(text: str, minutes: int) -> str:
    then = datetime.fromisoformat(text) - timedelta(minutes=minutes)
    return then.isoformat(timespec="milliseconds")


@pytest.fixture
def flapping_bucket(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    monkeypatch.setenv("FLAP_THRESHOLD", "3")
    monkeypatch.setenv("FLAP_WINDOW_MINUTES", "60")
    return make_bucket("terraform-managed")


def test_continuous_reverts_get_at_most_n_fixes_and_one_escalation(
    flapping_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    capsys.readouterr()

    outcomes = [revert_and_deliver(flapping_bucket, n) for n in range(10)]

    statuses = [o["status"] for o in outcomes]
    assert statuses == ["remediated"] * 3 + ["noncompliant"] * 7
    assert [o["flapping"] for o in outcomes] == [False] * 3 + [True] * 7
    held = outcomes[3]
    assert held["escalation"] == (
        "BucketWarden stopped fixing versioning on bucket terraform-managed: undone 3 times "
        f"in 60 minutes by {CI_SESSIONS}"
    )
    assert "not fixed: the flap breaker holds it after 3 fixes within 60 minutes" in held["reason"]
    assert all(o["escalation"] is None for o in outcomes[4:])
    # Versioning stays as the other actor left it: held pairs are not fixed.
    assert s3().get_bucket_versioning(Bucket=flapping_bucket)["Status"] == "Suspended"
    subjects = [message["Subject"] for message in inbox.receive()]
    assert subjects[:3] == ["BucketWarden remediated versioning on bucket terraform-managed"] * 3
    [escalation] = subjects[3:]
    assert escalation.startswith("BucketWarden stopped fixing versioning on bucket terraform-")
    items = audit_items(AUDIT_TABLE)
    assert len(items) == 10
    assert sum(item.get("flapping") is not None for item in items) == 7
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.count(("FlapEscalations", "versioning", 1.0)) == 1


def test_the_hold_lifts_after_a_quiet_window(flapping_bucket: str) -> None:
    for n in range(4):
        revert_and_deliver(flapping_bucket, n)
    assert s3().get_bucket_versioning(Bucket=flapping_bucket)["Status"] == "Suspended"

    age_audit_records(61)
    outcome = revert_and_deliver(flapping_bucket, 4)

    assert (outcome["status"], outcome["flapping"]) == ("remediated", False)
    assert s3().get_bucket_versioning(Bucket=flapping_bucket)["Status"] == "Enabled"


def test_a_dry_run_shows_the_hold_and_records_nothing(
    flapping_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        revert_and_deliver(flapping_bucket, n)
    recorded = len(audit_items(AUDIT_TABLE))
    monkeypatch.setenv("BUCKETWARDEN_DRY_RUN", "true")

    outcome = revert_and_deliver(flapping_bucket, 3)

    assert (outcome["status"], outcome["flapping"]) == ("noncompliant", True)
    assert "the flap breaker holds it after 3 fixes" in outcome["reason"]
    assert len(audit_items(AUDIT_TABLE)) == recorded
    assert s3().get_bucket_versioning(Bucket=flapping_bucket)["Status"] == "Suspended"


def test_reverts_during_the_hold_keep_it(flapping_bucket: str) -> None:
    for n in range(4):
        revert_and_deliver(flapping_bucket, n)
    # The three fixes are old now, but the hold recorded since keeps the pair held.
    age_audit_records(45)
    assert revert_and_deliver(flapping_bucket, 4)["flapping"] is True
    age_audit_records(45)
    assert revert_and_deliver(flapping_bucket, 5)["flapping"] is True


def test_threshold_zero_fixes_every_time(
    flapping_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAP_THRESHOLD", "0")
    outcomes = [revert_and_deliver(flapping_bucket, n) for n in range(5)]
    assert [o["status"] for o in outcomes] == ["remediated"] * 5


def test_other_controls_and_buckets_do_not_count(flapping_bucket: str) -> None:
    other = make_bucket("other-bucket")
    for n in range(3):
        revert_and_deliver(flapping_bucket, n)
    suspend(other)
    outcome = only(handle("PutBucketVersioning", other, "versioning", event_id="evt-other"))
    assert outcome["status"] == "remediated"


def test_a_hold_that_lasts_a_day_is_notified_again_once(
    flapping_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reverts every 50 minutes keep the pair held for a day: one escalation, then one digest
    after 24 hours naming the start of the hold and the drifts held back."""
    inbox = subscribe_inbox(monkeypatch)
    for n in range(4):
        revert_and_deliver(flapping_bucket, n)
    held = []
    for n in range(4, 34):  # 30 more reverts, 50 minutes apart: 25 hours
        age_audit_records(50)
        held.append(revert_and_deliver(flapping_bucket, n))

    assert all(o["status"] == "noncompliant" and o["flapping"] for o in held)
    digests = [o for o in held if o["escalation"]]
    [digest] = digests
    # The escalation was told 4 x 0 + 29 x 50 minutes = 24 h 10 min before the 29th held revert.
    assert held.index(digest) == 28
    assert digest["escalation"].startswith(
        f"BucketWarden still holds versioning on bucket {flapping_bucket}: not fixed since "
    )
    assert f"30 drifts held back, by {CI_SESSIONS}" in digest["escalation"]
    # The start of the hold, carried from record to record: the escalation's time, a day ago.
    started = datetime.fromisoformat(digest["held_since"])
    assert timedelta(hours=24) <= datetime.now(UTC) - started < timedelta(hours=25)
    assert f"not fixed since {digest['held_since']}, 30 drifts" in digest["escalation"]
    subjects = [message["Subject"] for message in inbox.receive()]
    assert [s.split(":")[0] for s in subjects[3:]] == [
        "BucketWarden stopped fixing versioning on bucket terraform-managed",
        f"BucketWarden still holds versioning on bucket {flapping_bucket}",
    ]
    assert s3().get_bucket_versioning(Bucket=flapping_bucket)["Status"] == "Suspended"


# -- public exposure is never held (issue 12, row 3) ---------------------------------------------


def reopen_block_public_access(bucket: str, round_number: int) -> dict[str, Any]:
    """The CI role deletes the bucket's Block Public Access; its event reaches the function."""
    s3().delete_public_access_block(Bucket=bucket)
    event_id = f"evt-bpa-{round_number}"
    return only(
        handle(
            "DeleteBucketPublicAccessBlock",
            bucket,
            "public-access",
            event_id=event_id,
            issuer_arn=CI_ROLE,
        )
    )


def reopen_policy(bucket: str, round_number: int) -> dict[str, Any]:
    """The CI role puts a policy letting anyone read; public-policy's outcome of its event."""
    anyone_reads = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(anyone_reads))
    outcomes = handle(
        "PutBucketPolicy",
        bucket,
        "public-access",
        event_id=f"evt-policy-{round_number}",
        issuer_arn=CI_ROLE,
    )
    return only([o for o in outcomes if o["control"] == "public-policy"])


def test_block_public_access_turned_off_again_and_again_is_fixed_every_time(
    flapping_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    capsys.readouterr()

    outcomes = []
    for n in range(6):
        outcomes.append(reopen_block_public_access(flapping_bucket, n))
        block = s3().get_public_access_block(Bucket=flapping_bucket)
        assert block["PublicAccessBlockConfiguration"] == dict.fromkeys(SETTINGS, True)

    assert [o["status"] for o in outcomes] == ["remediated"] * 6
    escalations = [o["escalation"] for o in outcomes]
    assert escalations == [None] * 3 + [escalations[3]] + [None] * 2
    assert escalations[3] == (
        "BucketWarden fixed bucket-public-access-block on bucket terraform-managed again: "
        f"undone 3 times in 60 minutes by {CI_SESSIONS}; public exposure is fixed every time, "
        "never held"
    )
    assert [o["flapping"] for o in outcomes] == [False] * 3 + [True] + [False] * 2
    subjects = [message["Subject"] for message in inbox.receive()]
    assert len(subjects) == 6
    assert subjects[3].startswith("BucketWarden fixed bucket-public-access-block on bucket ")
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.count(("FlapEscalations", "bucket-public-access-block", 1.0)) == 1


def public_policy(bucket: str) -> bool:
    try:
        text = s3().get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise
        return False
    return analyze(json.loads(text)).public


def test_a_public_policy_put_back_again_and_again_is_removed_every_time(
    flapping_bucket: str,
) -> None:
    outcomes = []
    for n in range(6):
        outcomes.append(reopen_policy(flapping_bucket, n))
        assert not public_policy(flapping_bucket)

    assert [o["status"] for o in outcomes] == ["remediated"] * 6
    assert sum(o["escalation"] is not None for o in outcomes) == 1
    assert outcomes[3]["escalation"].startswith(
        "BucketWarden fixed public-policy on bucket terraform-managed again: undone 3 times"
    )


def test_public_exposure_is_escalated_again_in_a_later_window(flapping_bucket: str) -> None:
    for n in range(4):
        reopen_block_public_access(flapping_bucket, n)
    age_audit_records(61)
    later = [reopen_block_public_access(flapping_bucket, n) for n in range(4, 8)]
    assert [o["status"] for o in later] == ["remediated"] * 4
    assert [o["escalation"] is not None for o in later] == [False] * 3 + [True]
