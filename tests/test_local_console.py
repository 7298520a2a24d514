"""What `bucketwarden local` prints for an outcome: the line, and its warnings under it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from bucketwarden_tools.local.console import LiveConsole

EXPIRED = "exemption expired on 2020-01-31: bucketwarden:exempt-until has passed"
OUTCOME: dict[str, Any] = {
    "kind": "outcome",
    "time": 0,
    "bucket": "b",
    "control": "versioning",
    "status": "remediated",
    "reason": "versioning is Suspended",
    "before": {"Status": "Suspended"},
    "after": {"Status": "Enabled"},
    "warnings": [EXPIRED],
}


def printed(item: dict[str, Any], as_json: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=400, highlight=False, soft_wrap=True)
    LiveConsole(as_json=as_json, console=console)(item)
    return out.getvalue()


def test_an_outcomes_warnings_are_printed_under_its_line() -> None:
    line, warning = printed(OUTCOME).splitlines()

    assert "remediated" in line
    assert "versioning on b: versioning is Suspended" in line
    assert warning.strip() == f"warning: {EXPIRED}"


def test_an_outcome_without_warnings_is_one_line() -> None:
    assert len(printed({**OUTCOME, "warnings": []}).splitlines()) == 1


def test_the_json_line_carries_the_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    printed(OUTCOME, as_json=True)

    assert json.loads(capsys.readouterr().out)["warnings"] == [EXPIRED]


def test_the_start_banner_gives_the_https_endpoint_and_the_ca_bundle() -> None:
    ready = {
        "kind": "ready",
        "time": 0,
        "endpoint": "http://127.0.0.1:4566",
        "https_endpoint": "https://127.0.0.1:4566",
        "ca_bundle": "/home/me/.cache/bucketwarden/local-tls/ca.pem",
        "functions": ["VersioningFunction"],
    }

    banner = printed(ready)

    assert "https://127.0.0.1:4566 with AWS_CA_BUNDLE=/home/me/.cache/bucketwarden/local-tls" in (
        banner
    )
