"""Decisions rest only on audit records BucketWarden wrote (issue 12, rows 1, 2 and 7).

Anyone allowed dynamodb:PutItem on the audit table writes a record here the way an attacker
would: with boto3, straight into the table. Such a record, one changed after it was written, and
one dated in the future, drive no decision; each is counted and notified once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bucketwarden import audit, aws, integrity
from bucketwarden.exemptions import read_tags
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.settings import Settings
from bucketwarden_tools import rollback
from bucketwarden_tools.rollback import RollbackError
from bucketwarden_tools.stack import DEFAULT_MAC_KEY
from tests.helpers import (
    ALL_USERS,
    API_CALLS,
    audit_items,
    audit_store,
    calls_delta,
    create_table,
    emitted_metrics,
    make_bucket,
    own_client,
    s3,
    subscribe_inbox,
)
from tests.test_controls_object_lock_retention import (
    CASE as LOCK,
)
from tests.test_controls_object_lock_retention import (
    default_rule,
    locked_bucket,
    with_baseline,
)
from tests.test_flap import revert_and_deliver
from tests.test_rollback import Ran
from tests.test_rollback import bucketwarden as bucketwarden  # noqa: PLC0414 (fixture)
from tests.test_rollback import table as table  # noqa: PLC0414 (fixture)

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"
KEYED = Settings(audit_mac_key=DEFAULT_MAC_KEY)
HUNDRED_YEARS = {"Mode": "COMPLIANCE", "Years": 100}
ATTACKER = "arn:aws:iam::123456789012:user/mallory"
FORGED_IDS = {"hold", "lock-1"}


@pytest.fixture
def audit_table(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    return AUDIT_TABLE


def now_text(offset: timedelta = timedelta()) -> str:
    return (utc_now() + offset).isoformat(timespec="milliseconds")


def lock_item(audit_id: str, bucket: str, rule: dict[str, Any]) -> dict[str, Any]:
    """An object-lock-retention record whose `after` holds `rule`, as the table stores it."""
    after = {
        "Configuration": {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}},
        "RecordedBaseline": rule,
    }
    return {
        "audit_id": {"S": audit_id},
        "bucket": {"S": bucket},
        "control": {"S": "object-lock-retention"},
        "status": {"S": "remediated"},
        "recorded_at": {"S": now_text(-timedelta(minutes=1))},
        "before": {"S": "null"},
        "after": {"S": json.dumps(after)},
    }


def flap_item(audit_id: str, bucket: str, recorded_at: str) -> dict[str, Any]:
    """A held versioning record (`flapping`): what keeps the flap breaker holding a pair."""
    return {
        "audit_id": {"S": audit_id},
        "bucket": {"S": bucket},
        "control": {"S": "versioning"},
        "status": {"S": "noncompliant"},
        "recorded_at": {"S": recorded_at},
        "flapping": {"BOOL": True},
        "actor": {"S": ATTACKER},
        "before": {"S": "null"},
        "after": {"S": "null"},
    }


def tagged(item: dict[str, Any]) -> dict[str, Any]:
    """The item as BucketWarden writes it: tagged with the stack's key."""
    return integrity.sealed(aws.client("kms"), item, DEFAULT_MAC_KEY)


def forge(item: dict[str, Any]) -> None:
    """What an account user with dynamodb:PutItem does: write the item as it is."""
    own_client("dynamodb").put_item(TableName=AUDIT_TABLE, Item=item)


def markers() -> list[dict[str, Any]]:
    items = own_client("dynamodb").scan(TableName=AUDIT_TABLE)["Items"]
    return [item for item in items if item["status"]["S"] == integrity.FORGED]


def forged_metrics(stdout: str) -> list[tuple[str, str, float]]:
    return [m for m in emitted_metrics(stdout) if m[0] == "ForgedRecords"]


# -- row 1: a forged 100-year COMPLIANCE baseline ----------------------------------------------


def test_a_forged_compliance_baseline_is_not_applied_and_is_notified_once(
    audit_table: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    forge(lock_item("forged-lock", bucket, HUNDRED_YEARS))
    capsys.readouterr()

    first = LOCK.run(bucket)
    second = LOCK.run(bucket, event_id="a-second-event")

    # The configured GOVERNANCE 30 days is applied; the forged rule sets no baseline.
    assert first["status"] == "remediated", first
    assert first["before"]["RecordedBaseline"] is None
    assert default_rule(bucket) == {"Mode": "GOVERNANCE", "Days": 30}
    assert second["status"] == "compliant", second
    # Counted and notified once, however often it is read.
    assert forged_metrics(capsys.readouterr().out) == [
        ("ForgedRecords", "object-lock-retention", 1.0)
    ]
    subjects = [m["Subject"] for m in inbox.receive()]
    assert (
        subjects.count(
            "BucketWarden ignored a forged audit record of object-lock-retention on bucket "
            "locked-bucket"
        )
        == 1
    )
    [marker] = markers()
    assert marker["forged_audit_id"]["S"] == "forged-lock"
    assert "carries no integrity tag" in marker["reason"]["S"]


def test_a_genuine_record_with_its_content_changed_sets_no_baseline(audit_table: str) -> None:
    """The tag of a record BucketWarden wrote, moved onto other content, does not verify."""
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    genuine = tagged(lock_item("lock-1", bucket, {"Mode": "GOVERNANCE", "Days": 1}))
    changed = lock_item("lock-1", bucket, HUNDRED_YEARS)
    forge({**changed, "recorded_at": genuine["recorded_at"], integrity.MAC: genuine[integrity.MAC]})

    outcome = with_baseline("COMPLIANCE", 1).run(bucket)

    # COMPLIANCE 1 day is configured and applied; the 100 years are not.
    assert outcome["before"]["RecordedBaseline"] is None
    assert default_rule(bucket) == {"Mode": "COMPLIANCE", "Days": 1}
    [marker] = markers()
    assert "does not verify" in marker["reason"]["S"]


def test_a_recorded_compliance_rule_never_upgrades_governance(audit_table: str) -> None:
    """Even a record BucketWarden wrote: only the deployed configuration asks for COMPLIANCE."""
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    forge(tagged(lock_item("lock-1", bucket, HUNDRED_YEARS)))

    outcome = LOCK.run(bucket)  # configured: GOVERNANCE 30 days

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == (
        "default retention GOVERNANCE 1 day is weaker than the recorded baseline "
        "GOVERNANCE 100 years"
    )
    assert default_rule(bucket) == {"Mode": "GOVERNANCE", "Years": 100}
    assert markers() == []


def test_records_that_cannot_raise_the_baseline_are_not_verified(audit_table: str) -> None:
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    weaker = lock_item("weaker", bucket, {"Mode": "GOVERNANCE", "Days": 2})
    # Older than the flap breaker's window, which needs every record it holds.
    forge({**weaker, "recorded_at": {"S": now_text(-timedelta(hours=2))}})
    before = API_CALLS.snapshot()

    LOCK.run(bucket)  # configured GOVERNANCE 30 days: a 2-day record changes nothing

    assert "kms.VerifyMac" not in calls_delta(before)
    assert markers() == []


# -- row 2: a forged hold ----------------------------------------------------------------------


@pytest.fixture
def versioned_bucket(audit_table: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FLAP_THRESHOLD", "3")
    monkeypatch.setenv("FLAP_WINDOW_MINUTES", "60")
    return make_bucket("team-bucket")


def test_a_forged_flapping_record_holds_nothing(versioned_bucket: str) -> None:
    forge(flap_item("forged-hold", versioned_bucket, now_text(-timedelta(minutes=5))))

    outcome = revert_and_deliver(versioned_bucket, 1)

    assert (outcome["status"], outcome["flapping"]) == ("remediated", False)
    assert s3().get_bucket_versioning(Bucket=versioned_bucket)["Status"] == "Enabled"


@pytest.mark.parametrize("sealed", [False, True], ids=["untagged", "tagged"])
def test_a_record_dated_in_the_future_holds_nothing(versioned_bucket: str, sealed: bool) -> None:
    """`recorded_at >= since` matches every later date: a record from the future would hold
    the pair for ever. Even a tagged one (a clock gone wrong, a stolen key) is not trusted."""
    item = flap_item("future-hold", versioned_bucket, now_text(timedelta(days=36500)))
    forge(tagged(item) if sealed else item)

    outcome = revert_and_deliver(versioned_bucket, 1)

    assert (outcome["status"], outcome["flapping"]) == ("remediated", False)
    [marker] = markers()
    assert "in the future" in marker["reason"]["S"]


def test_a_little_clock_skew_is_still_trusted(versioned_bucket: str) -> None:
    item = flap_item("skewed-hold", versioned_bucket, now_text(timedelta(minutes=2)))
    forge(tagged(item))

    outcome = revert_and_deliver(versioned_bucket, 1)

    assert (outcome["status"], outcome["flapping"]) == ("noncompliant", True)
    assert markers() == []


def test_a_genuine_hold_still_holds_and_costs_one_verification_per_process(
    versioned_bucket: str,
) -> None:
    forge(tagged(flap_item("hold", versioned_bucket, now_text())))
    before = API_CALLS.snapshot()

    outcomes = [revert_and_deliver(versioned_bucket, n) for n in range(3)]

    assert [o["flapping"] for o in outcomes] == [True] * 3
    # Each held outcome's own record is verified once; the first record's verdict is cached.
    assert calls_delta(before)["kms.VerifyMac"] == 3


def test_a_forged_record_is_notified_once_across_processes(
    versioned_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    forge(flap_item("forged-hold", versioned_bucket, now_text()))

    revert_and_deliver(versioned_bucket, 1)
    integrity.forget()  # another function instance: no cache, only the marker
    revert_and_deliver(versioned_bucket, 2)

    ignored = [m for m in inbox.receive() if "forged audit record" in m["Subject"]]
    assert len(ignored) == 1
    assert len(markers()) == 1


# -- without a key, recorded data decides nothing ----------------------------------------------


def test_without_a_key_no_record_holds_or_sets_a_baseline(
    versioned_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    forge(tagged(flap_item("hold", versioned_bucket, now_text())))
    locked = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    forge(tagged(lock_item("lock-1", locked, {"Mode": "GOVERNANCE", "Years": 5})))
    monkeypatch.delenv("AUDIT_MAC_KEY")

    held = revert_and_deliver(versioned_bucket, 1)
    lock = LOCK.run(locked)

    assert (held["status"], held["flapping"]) == ("remediated", False)
    assert lock["before"]["RecordedBaseline"] is None
    assert default_rule(locked) == {"Mode": "GOVERNANCE", "Days": 30}
    assert "AUDIT_MAC_KEY is not set" in caplog.text
    # Records are still written (untagged); nothing is reported as forged.
    written = [item for item in audit_items(AUDIT_TABLE) if item["audit_id"] not in FORGED_IDS]
    assert {item["status"] for item in written} == {"remediated"}
    assert all(integrity.MAC not in item for item in written)
    assert markers() == []


# -- prior attempts and rollback ---------------------------------------------------------------


def test_a_forged_prior_attempt_is_not_taken_as_this_event_s_fix(audit_table: str) -> None:
    outcome = Outcome("b", "versioning", Status.NONCOMPLIANT, "r", event_id="evt-1")
    audit_id = audit.audit_id_for(outcome)
    forge({**flap_item(audit_id, "b", now_text()), "status": {"S": "pending"}})

    store = audit_store(KEYED, AUDIT_TABLE, own_client("dynamodb"))
    assert store.prior_record(outcome) is None
    assert len(markers()) == 1


def public_acl_fix(bucket: str) -> dict[str, Any]:
    """A forged `remediated` record whose `before` opens the bucket to everyone."""
    acl = s3().get_bucket_acl(Bucket=bucket)
    owner = acl["Owner"]
    grant = {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}
    public = {"Owner": owner, "Grants": [*acl["Grants"], grant]}
    return {
        "audit_id": {"S": "forged-fix"},
        "bucket": {"S": bucket},
        "control": {"S": "public-acl"},
        "status": {"S": "remediated"},
        "recorded_at": {"S": now_text()},
        "fix_time": {"S": now_text()},
        "before": {"S": json.dumps(public)},
        "after": {"S": json.dumps({"Owner": owner, "Grants": acl["Grants"]})},
    }


@pytest.mark.parametrize("how", ["untagged", "changed"])
def test_a_forged_record_is_never_rolled_back(bucketwarden: Callable[..., Ran], how: str) -> None:
    bucket = make_bucket("team-bucket")
    item = public_acl_fix(bucket)
    if how == "changed":  # a record BucketWarden tagged, its `before` changed afterwards
        original = tagged({**item, "before": {"S": "null"}})
        item = {**item, integrity.MAC: original[integrity.MAC]}
    forge(item)
    grants = s3().get_bucket_acl(Bucket=bucket)["Grants"]

    ran = bucketwarden("rollback", "forged-fix")

    assert ran.code == 2
    assert "audit record forged-fix is not trusted" in ran.err
    assert "it is never rolled back" in ran.err
    assert s3().get_bucket_acl(Bucket=bucket)["Grants"] == grants
    assert read_tags(s3(), bucket) == {}  # not exempted either
    assert len(markers()) == 1


def test_without_a_key_nothing_is_rolled_back(audit_table: str) -> None:
    bucket = make_bucket("team-bucket")
    forge(tagged(public_acl_fix(bucket)))

    with pytest.raises(RollbackError, match="no AUDIT_MAC_KEY is configured"):
        rollback.load(own_client("dynamodb"), AUDIT_TABLE, "forged-fix", Settings())


def test_a_key_that_is_not_there_rolls_nothing_back(
    bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket("team-bucket")
    forge(tagged(public_acl_fix(bucket)))
    monkeypatch.setenv("AUDIT_MAC_KEY", "alias/no-such-key")

    ran = bucketwarden("rollback", "forged-fix")

    assert ran.code == 2
    assert "NotFoundException on VerifyMac" in ran.err


# -- the tag -----------------------------------------------------------------------------------


def test_the_tag_covers_every_attribute_but_itself_in_any_order() -> None:
    item = flap_item("a", "b", "2026-01-01T00:00:00.000+00:00")
    reordered = dict(reversed(list(item.items())))
    assert integrity.digest(item) == integrity.digest(reordered)
    assert integrity.digest(item) == integrity.digest({**item, integrity.MAC: {"B": b"x"}})
    for name in item:
        assert integrity.digest(item) != integrity.digest({**item, name: {"S": "other"}}), name
    assert integrity.digest(item) != integrity.digest({**item, "extra": {"S": ""}})


@pytest.mark.parametrize("genuine", [False, True], ids=["forged", "tagged"])
def test_only_a_trusted_sibling_is_rolled_back_with_the_fix(
    audit_table: str, genuine: bool
) -> None:
    """public-policy and secure-transport fixed in one write are rolled back together: a record
    forged as the other one's sibling would have been exempted and marked with it."""
    after = {"Policy": {"Version": "2012-10-17", "Statement": []}}
    fix = {
        **flap_item("policy-fix", "team-bucket", now_text()),
        "control": {"S": "public-policy"},
        "status": {"S": "remediated"},
        "fix_time": {"S": now_text()},
        "after": {"S": json.dumps(after)},
    }
    sibling = {**fix, "audit_id": {"S": "sibling"}, "control": {"S": "secure-transport"}}
    forge(tagged(fix))
    forge(tagged(sibling) if genuine else sibling)
    record = rollback.load(own_client("dynamodb"), AUDIT_TABLE, "policy-fix", KEYED)

    found = rollback.siblings(own_client("dynamodb"), AUDIT_TABLE, record, KEYED)

    assert [r.audit_id for r in found] == (["sibling"] if genuine else [])
    assert len(markers()) == (0 if genuine else 1)
