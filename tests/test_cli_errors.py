"""Bad input to the CLI as a user gives it: one clear line on stderr and exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_replay import run_cli

URL_COMMANDS = (
    ("scan",),
    ("remediate",),
    ("history",),
    ("rollback", "some-audit-id"),
    ("replay", "event.json"),
)


def assert_refused(result: object, *expected: str) -> None:
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


def test_error_text_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    output = tmp_path / "no[/]folder" / "report.json"

    result = run_cli("scan", "--output", str(output), endpoint="http://127.0.0.1:9")

    assert_refused(result, f"error: cannot write {output}: no folder {output.parent}")
    assert len(result.stderr.splitlines()) == 1


def test_aws_error_text_with_brackets_is_printed_as_it_is(moto_server: str) -> None:
    result = run_cli("scan", "--bucket", "Bad_Name!", endpoint=moto_server)

    # botocore's message quotes the bucket name rules, regular expressions such as [/:].
    assert_refused(
        result,
        'AWS error: Parameter validation failed: Invalid bucket name "Bad_Name!"',
        "accesspoint[/:]",
    )
    assert len(result.stderr.splitlines()) == 1
