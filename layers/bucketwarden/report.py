"""Outcomes for people (a rich table) and for tools (one JSON object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from bucketwarden.catalogue import CONTROL_IDS, control

STATUS_STYLES = {
    "compliant": "green",
    "remediated": "bold green",
    "noncompliant": "bold yellow",
    "exempted": "cyan",
    "skipped": "dim",
    "ignored": "dim",
    "failed": "bold red",
}


def write_json_lines(outcomes: Iterable[dict[str, Any]], stream: TextIO) -> None:
    for outcome in outcomes:
        stream.write(json.dumps(outcome, sort_keys=True, default=str) + "\n")


def describe(control_id: str | None, state: Any) -> str:
    if control_id in CONTROL_IDS:
        return control(str(control_id)).describe(state)
    return "" if state is None else json.dumps(state, sort_keys=True)


def change(outcome: dict[str, Any]) -> str:
    before = describe(outcome.get("control"), outcome.get("before"))
    after = describe(outcome.get("control"), outcome.get("after"))
    if outcome.get("control") is None or before == after:
        return before
    return f"{before}\n→ {after}"


def outcome_table(outcomes: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=True, expand=False)
    for column in ("bucket", "control", "status", "reason", "before → after"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        status = str(outcome.get("status"))
        table.add_row(
            str(outcome.get("bucket") or "-"),
            str(outcome.get("control") or "-"),
            f"[{STATUS_STYLES.get(status, '')}]{status}[/]",
            str(outcome.get("reason", "")),
            change(outcome),
        )
    return table


def print_outcomes(
    outcomes: list[dict[str, Any]], console: Console, title: str | None = None
) -> None:
    console.print(outcome_table(outcomes, title))
