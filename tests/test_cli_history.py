"""`bucketwarden history`: the audit records, newest first, by bucket, by control, as JSON lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import test_controls_versioning as versioning
from tests import test_rollback
from tests.helpers import ACTOR, EVENT_TIME, create_table, handle, public_bucket, tag_bucket
from tests.test_cli_replay import json_lines, on_moto_server, run_cli  # noqa: F401 (fixture)
from tests.test_rollback import AUDIT_TABLE, Ran

# The audit table and the in-process CLI runner are the rollback tests' fixtures.
table = test_rollback.table
bucketwarden = test_rollback.bucketwarden

# What every record of a fix shows (event_time, event_id: the fixes here come from events).
FIX_FIELDS = {
    "audit_id",
    "bucket",
    "control",
    "status",
    "before",
    "after",
    "actor",
    "found_by",
    "event_id",
    "event_time",
    "fix_time",
    "recorded_at",
}


@pytest.fixture
def records(bucketwarden: Callable[..., Ran]) -> list[dict[str, Any]]:
    """Three fixes on two buckets and a rollback, oldest first, as the engine reported them."""
    acl_fix = handle("PutBucketAcl", public_bucket("bucket-a"), "public-access", event_id="e1")[0]
    other = versioning.CASE.drifted("bucket-b")
    versioning_b = versioning.CASE.run(other, event_id="e2")
    versioning.suspend("bucket-a")
    versioning_a = versioning.CASE.run("bucket-a", event_id="e3")
    # Putting a public ACL back is asked for explicitly (--force).
    rolled = bucketwarden("rollback", acl_fix["audit_id"], "--json", "--force")
    assert rolled.code == 0, rolled.err
    [rollback] = rolled.lines
    undo = {
        "audit_id": rollback["rollback_audit_id"],
        "bucket": "bucket-a",
        "control": "public-acl",
        "status": "rolled-back",
    }
    return [acl_fix, versioning_b, versioning_a, undo]


def keys(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["audit_id"], r["bucket"], r["status"]) for r in found]


def newest_first(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return keys(list(reversed(found)))


def test_every_record_newest_first_with_its_fields(
    bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history", "--json")

    assert ran.code == 0, ran.err
    assert keys(ran.lines) == newest_first(records)
    times = [line["recorded_at"] for line in ran.lines]
    assert times == sorted(times, reverse=True)
    acl_fix = ran.lines[-1]
    assert set(acl_fix) >= FIX_FIELDS
    assert (acl_fix["actor"], acl_fix["event_id"], acl_fix["event_time"]) == (
        ACTOR,
        "e1",
        EVENT_TIME,
    )
    assert (acl_fix["found_by"], acl_fix["control"]) == ("event", "public-acl")
    # before and after are the configurations themselves, not their JSON text.
    assert acl_fix["before"] == records[0]["before"]
    assert acl_fix["after"] == records[0]["after"]
    # The fix names the rollback that undid it; the rollback names who did it.
    undo = ran.lines[0]
    assert acl_fix["rolled_back_by"] == undo["audit_id"]
    assert undo["rolls_back"] == acl_fix["audit_id"]
    assert undo["found_by"] == "rollback"
    assert undo["before"] == acl_fix["after"]
    assert undo["after"] == acl_fix["before"]


def test_one_buckets_records_from_its_index(
    bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history", "--bucket", "bucket-a", "--json")

    assert ran.code == 0, ran.err
    assert keys(ran.lines) == newest_first([r for r in records if r["bucket"] == "bucket-a"])


def test_one_controls_records(
    bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history", "--control", "versioning", "--json")

    assert ran.code == 0, ran.err
    assert keys(ran.lines) == newest_first([r for r in records if r["control"] == "versioning"])


def test_one_buckets_records_of_one_control(
    bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history", "--bucket", "bucket-a", "--control", "versioning", "--json")

    assert ran.code == 0, ran.err
    assert keys(ran.lines) == keys([records[2]])


@pytest.mark.parametrize("bucket", [[], ["--bucket", "bucket-a"]], ids=["scan", "index"])
def test_limit_keeps_the_newest(
    bucket: list[str], bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history", *bucket, "--limit", "2", "--json")

    assert ran.code == 0, ran.err
    wanted = [r for r in records if not bucket or r["bucket"] == "bucket-a"]
    assert keys(ran.lines) == newest_first(wanted)[:2]


def test_a_table_on_the_terminal(
    bucketwarden: Callable[..., Ran], records: list[dict[str, Any]]
) -> None:
    ran = bucketwarden("history")

    assert ran.code == 0, ran.err
    assert "audit records, newest first" in ran.out
    for record in records:
        assert record["audit_id"] in ran.out
    for status in ("remediated", "rolled-back"):
        assert status in ran.out
    assert "Suspended" in ran.out  # the change of the versioning fixes, before → after


def test_a_records_warnings_are_kept_and_shown(bucketwarden: Callable[..., Ran]) -> None:
    # An exemption whose date has passed exempts nothing: the fix is made, and the record says
    # why the tag did not hold, as the notification did.
    bucket = versioning.CASE.drifted("expired-exemption")
    tags = {
        "bucketwarden:exempt": "versioning",
        "bucketwarden:exempt-reason": "archive",
        "bucketwarden:exempt-until": "2020-01-31",
    }
    tag_bucket(bucket, tags)
    fixed = versioning.CASE.run(bucket, event_id="e-expired")
    assert fixed["status"] == "remediated"

    as_json = bucketwarden("history", "--bucket", bucket, "--json")
    as_table = bucketwarden("history", "--bucket", bucket)

    [record] = as_json.lines
    assert record["warnings"] == fixed["warnings"]
    assert [w for w in record["warnings"] if w.startswith("exemption expired on 2020-01-31")]
    # In the table, under the change (the column folds long text over several lines).
    assert "warning:" in as_table.out
    assert "2020-01-31" in as_table.out


def test_an_empty_table_says_so(bucketwarden: Callable[..., Ran]) -> None:
    ran = bucketwarden("history")
    assert ran.code == 0, ran.err
    assert "no audit records" in ran.out
    assert bucketwarden("history", "--json").out == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--control", "public-acls"], "unknown control 'public-acls'; known: "),
        (["--limit", "0"], "'0': expected a whole number of at least 1"),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    arguments: list[str],
    message: str,
    bucketwarden: Callable[..., Ran],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        bucketwarden("history", *arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_audit_table_is_refused(bucketwarden: Callable[..., Ran]) -> None:
    ran = bucketwarden("history", "--audit-table", "no-such-table")
    assert ran.code == 2
    assert "audit table 'no-such-table' not found" in ran.said


@pytest.mark.usefixtures("on_moto_server")
def test_history_as_a_user_runs_it_against_an_endpoint(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    first = versioning.CASE.run(versioning.CASE.drifted("served-a"), event_id="e1")
    second = versioning.CASE.run(versioning.CASE.drifted("served-b"), event_id="e2")

    ran = run_cli("history", "--json", endpoint=moto_server)
    one = run_cli("history", "--bucket", "served-a", "--json", endpoint=moto_server)

    assert ran.returncode == 0, ran.stderr
    assert [line["audit_id"] for line in json_lines(ran.stdout)] == [
        second["audit_id"],
        first["audit_id"],
    ]
    assert one.returncode == 0, one.stderr
    [line] = json_lines(one.stdout)
    assert (line["audit_id"], line["before"], line["after"]) == (
        first["audit_id"],
        {"Status": "Suspended"},
        {"Status": "Enabled"},
    )
