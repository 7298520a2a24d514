"""`bucketwarden scan --standard fsbp` as a user runs it, against a moto server: one row per
Security Hub S3 control, covered by which control and how, with the scan's outcomes counted."""

from __future__ import annotations

import pytest

from bucketwarden.standards import S3_CONTROLS
from tests.helpers import detect_only_on, make_bucket, s3
from tests.test_cli_errors import assert_refused
from tests.test_cli_replay import json_lines, on_moto_server, run_cli  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("on_moto_server")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    detect_only_on(monkeypatch)


def suspended_bucket(name: str) -> str:
    make_bucket(name)
    for status in ("Enabled", "Suspended"):
        s3().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    return name


def test_json_is_one_row_per_s3_control_with_the_scans_outcomes_counted() -> None:
    suspended_bucket("suspended-bucket")
    versioned = make_bucket("versioned-bucket")
    s3().put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})

    result = run_cli("scan", "--standard", "fsbp", "--json")

    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json_lines(result.stdout)}
    assert list(rows) == [row.id for row in S3_CONTROLS]
    versioning = rows["S3.14"]
    assert versioning["covered_by"] == [{"control": "versioning", "how": "fixed"}]
    assert (versioning["passed"], versioning["failed"]) == (1, 1)
    assert (versioning["exempted"], versioning["not_checked"]) == (0, 0)
    # Neither bucket has MFA delete: detected only, found on both.
    mfa = rows["S3.20"]
    assert mfa["covered_by"] == [{"control": "mfa-delete", "how": "detected only"}]
    assert (mfa["passed"], mfa["failed"]) == (0, 2)
    # A row nothing covers says why, and counts nothing.
    replication = rows["S3.7"]
    assert replication["covered_by"] == []
    assert "not a security baseline" in replication["why_not"]
    assert replication["passed"] == replication["failed"] == 0
    assert rows["S3.4"]["lifecycle"] == "retired"


def test_table_names_each_row_and_modes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suspended_bucket("suspended-bucket")
    monkeypatch.setenv("MODE_VERSIONING", "notify")

    result = run_cli("scan", "--standard", "FSBP", "--fail-on-findings")

    assert result.returncode == 1, result.stderr  # findings, as for scan
    for row in S3_CONTROLS:
        assert f"│ {row.id} " in result.stdout
    assert "versioning: detected only" in result.stdout  # its mode (notify) follows
    assert "mfa-delete: detected only" in result.stdout
    assert "unassigned" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--standard", "cis"), "argument --standard: unknown standard 'cis'; known: fsbp"),
        (("--standard", "fsbp", "--format", "sarif"), "--standard reports as table or json"),
    ],
    ids=["unknown-standard", "sarif"],
)
def test_bad_standard_arguments_are_refused(arguments: tuple[str, ...], expected: str) -> None:
    assert_refused(run_cli("scan", *arguments), expected)
