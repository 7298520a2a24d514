"""Bad input to the CLI as a user gives it: one clear line on stderr and exit 2, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bucketwarden.settings import mode_variable
from tests.conftest import EVENTS
from tests.helpers import detect_only_on, make_bucket
from tests.test_cli_replay import json_lines, on_moto_server, run_cli  # noqa: F401 (fixture)

# Nothing listens there: a command that reached AWS would fail with "AWS error".
NO_ENDPOINT = "http://127.0.0.1:9"

URL_COMMANDS = (
    ("scan",),
    ("remediate",),
    ("history",),
    ("rollback", "some-audit-id"),
    ("replay", "event.json"),
)


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 2, nothing on stdout, each expected text on stderr, and no traceback."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


@pytest.mark.parametrize("command", URL_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1:21", "http://", "http://host:port"])
def test_endpoint_that_is_not_an_http_url_is_refused(command: tuple[str, ...], url: str) -> None:
    result = run_cli(*command, endpoint=url)

    assert_refused(
        result,
        f"argument --endpoint-url: expected a URL such as http://127.0.0.1:5000, got {url!r}",
    )


@pytest.mark.parametrize("command", URL_COMMANDS[:4], ids=lambda c: c[0])
def test_endpoint_variable_that_is_not_an_http_url_is_refused(
    command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "notaurl")

    result = run_cli(*command)

    assert_refused(
        result, "error: AWS_ENDPOINT_URL='notaurl': expected a URL such as http://127.0.0.1:5000"
    )


def test_endpoint_variable_is_checked_for_replay_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text((EVENTS / "PutBucketAcl.json").read_text())
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ftp://127.0.0.1:21")

    result = run_cli("replay", str(event))

    assert_refused(result, "error: AWS_ENDPOINT_URL='ftp://127.0.0.1:21': expected a URL")


def test_error_text_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    output = tmp_path / "no[/]folder" / "report.json"

    result = run_cli("scan", "--output", str(output), endpoint=NO_ENDPOINT)

    assert_refused(result, f"error: cannot write {output}: no folder {output.parent}")
    assert len(result.stderr.splitlines()) == 1


def test_aws_error_text_with_brackets_is_printed_as_it_is(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    detect_only_on(monkeypatch)  # at their defaults: no "off by their mode" note
    result = run_cli("scan", "--bucket", "Bad_Name!", endpoint=moto_server)

    # botocore's message quotes the bucket name rules, regular expressions such as [/:].
    assert_refused(
        result,
        'AWS error: Parameter validation failed: Invalid bucket name "Bad_Name!"',
        "accesspoint[/:]",
    )
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ("rollback", ""),
        ("rollback", "  "),
        ("history", "--bucket", ""),
        ("scan", "--bucket", " "),
        ("remediate", "--bucket", ""),
        ("history", "--audit-table", ""),
        ("remediate", "--audit-table", ""),
    ],
    ids=" ".join,
)
def test_empty_or_blank_name_is_refused_before_any_aws_call(command: tuple[str, ...]) -> None:
    result = run_cli(*command, endpoint=NO_ENDPOINT)

    assert_refused(result, ": must not be empty or blank")
    assert "AWS error" not in result.stderr


def test_empty_control_of_history_is_refused() -> None:
    result = run_cli("history", "--control", "", endpoint=NO_ENDPOINT)

    assert_refused(result, "argument --control: unknown control ''; known: ")


@pytest.mark.parametrize(
    "formats",
    [
        ("--json", "--format", "sarif"),
        ("--format", "table", "--json"),
        ("--format", "json", "--json"),
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("command", ["scan", "remediate"])
def test_json_and_format_together_are_refused(command: str, formats: tuple[str, ...]) -> None:
    result = run_cli(command, *formats, endpoint=NO_ENDPOINT)

    assert_refused(result, "not allowed with argument")


@pytest.mark.parametrize("command", ["scan", "remediate"])
def test_help_names_the_exit_codes(command: str) -> None:
    result = run_cli(command, "--help")

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "exit codes: 0 the sweep ran (whatever it found); 1 with --fail-on-findings," in text
    assert "2 bad input or an error" in text


@pytest.mark.usefixtures("on_moto_server")
def test_controls_given_twice_add_up_each_control_once(moto_server: str) -> None:
    make_bucket("controls-twice")

    result = run_cli(
        "scan",
        "--json",
        "--controls",
        "versioning",
        "--controls",
        "public-acl,versioning",
        endpoint=moto_server,
    )

    assert result.returncode == 0, result.stderr
    outcomes = json_lines(result.stdout)
    assert sorted(o["control"] for o in outcomes) == ["public-acl", "versioning"]


@pytest.mark.usefixtures("on_moto_server")
def test_selected_controls_off_by_their_mode_are_named(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_bucket("mode-off")
    monkeypatch.setenv(mode_variable("versioning"), "off")

    only_off = run_cli("scan", "--controls", "versioning", endpoint=moto_server)
    mixed = run_cli("scan", "--json", "--controls", "versioning,public-acl", endpoint=moto_server)
    none_off = run_cli("scan", "--json", "--controls", "public-acl", endpoint=moto_server)

    note = "note: not checked, off by their mode setting: versioning (MODE_VERSIONING=off)"
    assert only_off.returncode == 0, only_off.stderr
    assert note in only_off.stderr
    assert "nothing to check" in only_off.stdout
    assert mixed.returncode == 0, mixed.stderr
    assert note in mixed.stderr
    assert [o["control"] for o in json_lines(mixed.stdout)] == ["public-acl"]
    assert none_off.returncode == 0, none_off.stderr
    assert "note:" not in none_off.stderr


@pytest.mark.usefixtures("on_moto_server")
def test_table_written_to_a_file_prints_the_summary_on_stderr(
    moto_server: str, tmp_path: Path
) -> None:
    make_bucket("table-to-file")
    report = tmp_path / "scan.txt"

    to_file = run_cli(
        "scan", "--controls", "versioning", "--output", str(report), endpoint=moto_server
    )
    on_stdout = run_cli("scan", "--controls", "versioning", endpoint=moto_server)

    summary = "1 check on 1 bucket: 1 noncompliant"
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == ""
    assert summary in to_file.stderr
    assert summary in report.read_text()
    # On the terminal the table ends with the summary; it is not said twice.
    assert on_stdout.returncode == 0, on_stdout.stderr
    assert summary in on_stdout.stdout
    assert summary not in on_stdout.stderr
