"""The flap breaker: at most N fixes per bucket and control in M minutes, one escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bucketwarden import flap, integrity
from bucketwarden.settings import Settings
from bucketwarden.stack import DEFAULT_MAC_KEY
from tests.helpers import (
    ACCOUNT,
    audit_items,
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


def record(status: str, actor: str | None = CI_ROLE, flapping: bool = False) -> dict[str, Any]:
    return {"status": status, "actor": actor, "recorded_at": "", "flapping": flapping}


# -- the verdict -------------------------------------------------------------------------------


def test_fewer_fixes_than_the_threshold_are_not_held() -> None:
    verdict = flap.judge([record("remediated"), record("remediated")], threshold=3)
    assert verdict == flap.FlapVerdict(hold=False, fixes=2)


def test_the_threshold_reached_holds_and_escalates_naming_the_actors() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:user/alice"
    records = [record("remediated"), record("remediated", other), record("remediated")]
    verdict = flap.judge([*records, record("compliant", None)], threshold=3)
    assert verdict == flap.FlapVerdict(hold=True, escalate=True, fixes=3, actors=(CI_ROLE, other))


def test_a_hold_in_the_window_keeps_holding_without_a_second_escalation() -> None:
    verdict = flap.judge([record("noncompliant", flapping=True)], threshold=3)
    assert (verdict.hold, verdict.escalate) == (True, False)


def test_sessions_of_one_role_count_as_one_actor() -> None:
    runs = [record("remediated", f"{CI_SESSIONS}/run-{n}") for n in range(3)]
    assert flap.judge(runs, threshold=3).actors == (CI_SESSIONS,)


def test_threshold_zero_never_holds() -> None:
    assert not flap.judge([record("remediated")] * 10, threshold=0).hold


def test_no_audit_table_means_no_breaker() -> None:
    settings = Settings(audit_table=None)
    assert not flap.check("b", "versioning", datetime.now(UTC), settings).hold


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


def age_audit_records(minutes: int) -> None:
    """Move every audit record `minutes` into the past, as if that much time went by: each is
    written again as BucketWarden would have written it then (tagged with its key)."""
    dynamodb = own_client("dynamodb")
    for item in dynamodb.scan(TableName=AUDIT_TABLE)["Items"]:
        then = datetime.fromisoformat(item["recorded_at"]["S"]) - timedelta(minutes=minutes)
        earlier = {**item, "recorded_at": {"S": then.isoformat(timespec="milliseconds")}}
        sealed = integrity.sealed(earlier, DEFAULT_MAC_KEY)
        dynamodb.put_item(TableName=AUDIT_TABLE, Item=sealed)


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
