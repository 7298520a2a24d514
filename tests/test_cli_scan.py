"""`bucketwarden scan` and `remediate` as a user runs them: subprocesses against a moto server.

One population of drifted subjects (buckets in two regions, the account, an access point): scan
finds every drift and changes nothing, remediate fixes it, a second scan finds all compliant.
The reports: JSON lines, the table, SARIF checked against the official 2.1.0 schema.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bucketwarden.catalogue import CONTROL_IDS, CONTROLS
from bucketwarden.settings import mode_variable
from bucketwarden_tools.sarif import sarif_log
from tests.helpers import (
    ACCOUNT,
    ALL_USERS,
    audit_items,
    create_table,
    make_bucket,
    s3,
    tag_bucket,
)
from tests.test_cli_replay import json_lines, on_moto_server, run_cli  # noqa: F401 (fixture)
from tests.test_controls_access_point import (
    access_point_state,
    analytics_read,
    arn_of,
    make_public,
    open_access_point,
    policy,
)
from tests.test_sample_events import PUBLIC_READ

pytestmark = pytest.mark.usefixtures("on_moto_server")


@pytest.fixture(autouse=True)
def reporting_controls_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Controls that only report (no write action) are off here: these tests follow drifts to
    their fixes, and a second scan to none; what those controls find is their own tests'."""
    for control in CONTROLS:
        if not control.write_actions:
            monkeypatch.setenv(mode_variable(control.id), "off")


SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0.json").read_text())

ACL_BUCKET = "drift-public-acl"
POLICY_BUCKET = "drift-public-policy"
VERSIONING_BUCKET = "drift-suspended-versioning"
OTHER_REGION = "eu-west-1"
BUCKETS = (ACL_BUCKET, POLICY_BUCKET, VERSIONING_BUCKET)
# What moto leaves undone on every new bucket (AWS sets the first, third and fourth since 2023).
EVERY_BUCKET = (
    "bucket-public-access-block",
    "object-ownership",
    "secure-transport",
    "default-encryption",
    "versioning",
)


def drifted_population() -> set[tuple[str, str]]:
    """Drifted subjects on the moto server; returns the (subject, control) findings expected."""
    access_point = open_access_point(ACL_BUCKET)
    make_public(access_point)
    s3().put_bucket_acl(Bucket=ACL_BUCKET, ACL="public-read")
    make_bucket(POLICY_BUCKET)
    objects = f"arn:aws:s3:::{POLICY_BUCKET}/*"
    public_policy = policy({**PUBLIC_READ, "Resource": objects})
    s3().put_bucket_policy(Bucket=POLICY_BUCKET, Policy=json.dumps(public_policy))
    s3().create_bucket(
        Bucket=VERSIONING_BUCKET, CreateBucketConfiguration={"LocationConstraint": OTHER_REGION}
    )
    s3().put_bucket_versioning(
        Bucket=VERSIONING_BUCKET, VersioningConfiguration={"Status": "Suspended"}
    )
    return {
        *((bucket, control) for bucket in BUCKETS for control in EVERY_BUCKET),
        (ACL_BUCKET, "public-acl"),
        (POLICY_BUCKET, "public-policy"),
        (ACCOUNT, "account-public-access-block"),
        (access_point, "access-point"),
    }


def by_status(outcomes: list[dict[str, Any]], status: str) -> set[tuple[str, str]]:
    return {(o["bucket"], o["control"]) for o in outcomes if o["status"] == status}


def configuration() -> dict[str, Any]:
    """What the population's surfaces hold now, read back from S3."""
    access_point = arn_of(f"{ACL_BUCKET}-ap")
    return {
        "acl": s3().get_bucket_acl(Bucket=ACL_BUCKET)["Grants"],
        "policy": s3().get_bucket_policy(Bucket=POLICY_BUCKET)["Policy"],
        "versioning": s3().get_bucket_versioning(Bucket=VERSIONING_BUCKET).get("Status"),
        "access point": access_point_state(access_point)["Policy"],
        "buckets with encryption": [b for b in BUCKETS if _encryption(b)],
    }


def _encryption(bucket: str) -> bool:
    try:
        s3().get_bucket_encryption(Bucket=bucket)
    except s3().exceptions.ClientError:
        return False
    return True


def test_scan_finds_every_drift_remediate_fixes_it_and_a_second_scan_finds_none(
    moto_server: str,
) -> None:
    expected = drifted_population()
    drifted = configuration()
    audit_table = create_table("scan-audit", "audit_id")

    scan = run_cli("scan", "--format", "json", "--fail-on-findings", endpoint=moto_server)

    assert scan.returncode == 1, scan.stderr
    outcomes = json_lines(scan.stdout)
    assert by_status(outcomes, "noncompliant") == expected
    assert {o["status"] for o in outcomes} == {"noncompliant", "compliant"}
    assert {o["found_by"] for o in outcomes} == {"sweep"}
    assert {o["region"] for o in outcomes if o["bucket"] == VERSIONING_BUCKET} == {OTHER_REGION}
    # Every line names the account it is about (the caller's, asked of STS once).
    assert {o["account"] for o in outcomes} == {ACCOUNT}
    [versioning] = [
        o for o in outcomes if (o["bucket"], o["control"]) == (VERSIONING_BUCKET, "versioning")
    ]
    assert versioning["before"] == {"Status": "Suspended"}
    assert versioning["after"] == {"Status": "Enabled"}
    assert {"bucket", "control", "status", "before", "after", "reason", "event_id"} <= set(
        versioning
    )
    # Read-only: every surface as it was, nothing audited.
    assert configuration() == drifted
    assert [g for g in drifted["acl"] if g["Grantee"].get("URI") == ALL_USERS]
    assert audit_items(audit_table) == []

    fix = run_cli("remediate", "--json", "--audit-table", audit_table, endpoint=moto_server)

    assert fix.returncode == 0, fix.stderr
    fixed = json_lines(fix.stdout)
    assert by_status(fixed, "remediated") == expected
    assert {o["status"] for o in fixed} == {"remediated", "compliant"}
    assert {(i["bucket"], i["control"], i["found_by"]) for i in audit_items(audit_table)} == {
        (*finding, "sweep") for finding in expected
    }
    now = configuration()
    assert not [g for g in now["acl"] if g["Grantee"].get("URI") == ALL_USERS]
    assert now["versioning"] == "Enabled"
    assert now["buckets with encryption"] == list(BUCKETS)
    assert now["access point"] == policy(analytics_read(arn_of(f"{ACL_BUCKET}-ap")))
    # Only the public statement went; the Deny statements of secure-transport came.
    assert {s["Effect"] for s in json.loads(now["policy"])["Statement"]} == {"Deny"}

    rescan = run_cli("scan", "--json", "--fail-on-findings", endpoint=moto_server)

    assert rescan.returncode == 0, rescan.stderr
    assert {o["status"] for o in json_lines(rescan.stdout)} == {"compliant"}
    # The totals go to stderr, beside the JSON on stdout.
    checks = len(json_lines(rescan.stdout))
    summary = f"{checks} checks on 3 buckets, 1 account, 1 access point: {checks} compliant"
    assert summary in rescan.stderr


def test_remediate_dry_run_prints_before_and_after_and_changes_nothing(moto_server: str) -> None:
    expected = drifted_population()
    drifted = configuration()

    result = run_cli("remediate", "--dry-run", endpoint=moto_server)

    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "remediate --dry-run: the changes it would make, nothing changed" in table
    for change in ("Suspended", "→ Enabled", "no default encryption", "→ AES256", "→ all four on"):
        assert change in table, change
    assert "READ:AllUsers" in table
    assert "per control" in table
    assert f": {len(expected)} noncompliant, " in table.splitlines()[-1]
    assert configuration() == drifted


def test_remediate_dry_run_shows_the_changes_remediate_then_makes(moto_server: str) -> None:
    """Each planned change is the one the fix makes: controls judge the state the fixes before
    them leave (object-ownership, once public-acl has cleaned the ACL), and the controls of one
    surface show one after."""
    expected = drifted_population()

    planned = json_lines(run_cli("remediate", "--dry-run", "--json", endpoint=moto_server).stdout)
    made = json_lines(run_cli("remediate", "--json", endpoint=moto_server).stdout)

    assert by_status(planned, "noncompliant") == by_status(made, "remediated") == expected
    planned_after = {(o["bucket"], o["control"]): o["after"] for o in planned}
    made_after = {(o["bucket"], o["control"]): o["after"] for o in made}
    for finding in sorted(expected):
        assert planned_after[finding] == made_after[finding], finding


def test_remediate_dry_run_reads_the_audit_table_and_shows_the_hold_the_real_run_keeps(
    moto_server: str,
) -> None:
    audit_table = create_table("dry-run-audit", "audit_id")
    make_bucket(VERSIONING_BUCKET)
    only = ("--controls", "versioning", "--bucket", VERSIONING_BUCKET, "--json")

    def drift_and(*args: str) -> dict[str, Any]:
        s3().put_bucket_versioning(
            Bucket=VERSIONING_BUCKET, VersioningConfiguration={"Status": "Suspended"}
        )
        done = run_cli(
            "remediate", *only, "--audit-table", audit_table, *args, endpoint=moto_server
        )
        assert done.returncode == 0, done.stderr
        [outcome] = json_lines(done.stdout)
        return outcome

    fixes = [drift_and()["status"] for _ in range(3)]  # the flap threshold: 3 fixes
    held = drift_and()  # the fourth drift is held, not fixed
    planned = drift_and("--dry-run")

    assert fixes == ["remediated"] * 3
    assert (held["status"], planned["status"]) == ("noncompliant", "noncompliant")
    assert "flap" in held["reason"]
    assert planned["reason"] == held["reason"]
    assert len(audit_items(audit_table)) == 4  # the dry run wrote nothing


def test_remediate_dry_run_with_an_audit_table_that_is_not_there_is_an_error(
    moto_server: str,
) -> None:
    done = run_cli("remediate", "--dry-run", "--audit-table", "no-such-table", endpoint=moto_server)

    assert done.returncode == 2
    assert "audit table 'no-such-table' not found" in done.stderr


def test_sarif_validates_against_the_schema_and_locates_each_finding(
    moto_server: str, tmp_path: Path
) -> None:
    expected = drifted_population()
    tag_bucket(
        VERSIONING_BUCKET,
        {"bucketwarden:exempt": "versioning", "bucketwarden:exempt-reason": "archive, by design"},
    )
    report = tmp_path / "scan.sarif"

    result = run_cli("scan", "--format", "sarif", "--output", str(report), endpoint=moto_server)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    log = json.loads(report.read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "BucketWarden"
    assert driver["version"]
    assert [rule["id"] for rule in driver["rules"]] == list(CONTROL_IDS)
    assert all(r["help"]["text"].endswith(f"docs/controls/{r['id']}.md") for r in driver["rules"])
    located = {
        (r["locations"][0]["logicalLocations"][0]["name"], r["ruleId"]): r for r in run["results"]
    }
    assert set(located) == expected
    exempted = located[(VERSIONING_BUCKET, "versioning")]
    assert (exempted["kind"], exempted["level"]) == ("fail", "note")
    assert exempted["suppressions"][0]["kind"] == "inSource"
    assert "archive, by design" in exempted["suppressions"][0]["justification"]
    public = located[(ACL_BUCKET, "public-acl")]
    assert (public["kind"], public["level"]) == ("fail", "error")
    assert public["message"]["text"] == "ACL grants READ to AllUsers"
    assert public["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        f"arn:aws:s3:::{ACL_BUCKET}"
    )
    account = located[(ACCOUNT, "account-public-access-block")]
    assert account["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        f"AWS::::Account:{ACCOUNT}"
    )
    for (subject, control), found in located.items():
        assert driver["rules"][found["ruleIndex"]]["id"] == control
        if subject.startswith("arn:"):  # the access point is named by its ARN already
            assert found["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == subject


def test_sarif_kind_and_level_of_each_status() -> None:
    """Statuses a moto population cannot all produce (failed, remediated) map as documented."""
    statuses = ("noncompliant", "failed", "exempted", "remediated", "compliant", "skipped")
    outcomes = [
        {"bucket": f"bucket-{status}", "control": "versioning", "status": status, "reason": "r"}
        for status in statuses
    ]

    log = sarif_log(outcomes, CONTROLS)

    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    results = {
        r["locations"][0]["logicalLocations"][0]["name"]: r for r in log["runs"][0]["results"]
    }
    assert {name: (r["kind"], r["level"]) for name, r in results.items()} == {
        "bucket-noncompliant": ("fail", "error"),
        "bucket-failed": ("fail", "warning"),
        "bucket-exempted": ("fail", "note"),
        "bucket-remediated": ("pass", "none"),
    }
    assert results["bucket-remediated"]["message"]["text"] == "fixed: r"
    assert log["runs"][0]["properties"]["statusCounts"] == dict.fromkeys(sorted(statuses), 1)


def test_named_buckets_only_and_a_missing_one_is_an_error(moto_server: str) -> None:
    make_bucket("named-one")
    make_bucket("not-named")

    named = run_cli("scan", "--json", "--bucket", "named-one", endpoint=moto_server)
    missing = run_cli(
        "scan", "--bucket", "named-one", "--bucket", "no-such-bucket", endpoint=moto_server
    )

    assert named.returncode == 0, named.stderr
    outcomes = json_lines(named.stdout)
    # A bucket named: its bucket controls, not the account's.
    assert {o["bucket"] for o in outcomes} == {"named-one"}
    # (The controls that only report are off: see reporting_controls_off.)
    bucket_controls = [c.id for c in CONTROLS if c.scope == "bucket" and c.write_actions]
    assert [o["control"] for o in outcomes] == bucket_controls
    assert missing.returncode == 2
    assert "no bucket named 'no-such-bucket'" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert missing.stdout == ""


def test_unknown_control_exits_2_naming_the_known_ones() -> None:
    result = run_cli("scan", "--controls", "public-acl,no-such-control")

    assert result.returncode == 2
    assert "unknown control(s) no-such-control" in result.stderr
    assert all(control_id in result.stderr for control_id in CONTROL_IDS)
    assert result.stdout == ""


def test_aws_error_exits_2_without_a_traceback() -> None:
    result = run_cli("scan", "--json", endpoint="http://127.0.0.1:9")

    assert result.returncode == 2
    assert "AWS error" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def run_on_terminal(*args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """The CLI with stderr on a pseudo-terminal (as in a person's shell) and stdout piped."""
    controller, terminal = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    command = [sys.executable, "-m", "bucketwarden_tools.cli", *args]
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the CLI exited and closed its end
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=terminal, env=environment, text=True
    ) as process:
        os.close(terminal)
        stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(controller)
    completed = subprocess.CompletedProcess(command, process.returncode, stdout, "")
    return completed, b"".join(shown).decode(errors="replace")


def test_progress_bar_on_a_terminal_none_when_piped(moto_server: str) -> None:
    for name in ("progress-one", "progress-two"):
        make_bucket(name)
    scan = ("scan", "--json", "--controls", "versioning")

    on_terminal, terminal = run_on_terminal(*scan, "--endpoint-url", moto_server)
    piped = run_cli(*scan, endpoint=moto_server)

    assert on_terminal.returncode == 0, terminal
    assert "scanning buckets" in terminal
    assert "2/2" in terminal
    assert "━" in terminal  # the bar itself
    assert len(json_lines(on_terminal.stdout)) == len(json_lines(piped.stdout))
    assert piped.returncode == 0, piped.stderr
    assert "scanning buckets" not in piped.stderr
    assert "━" not in piped.stderr


def test_html_report_is_written_to_the_output_file(moto_server: str, tmp_path: Path) -> None:
    pytest.importorskip("bucketwarden_tools.reports_html")
    make_bucket("html-report")
    report = tmp_path / "scan.html"

    result = run_cli(
        "scan",
        "--format",
        "html",
        "--controls",
        "versioning",
        "--output",
        str(report),
        endpoint=moto_server,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    page = report.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "html-report" in page
    assert "versioning was never enabled" in page
