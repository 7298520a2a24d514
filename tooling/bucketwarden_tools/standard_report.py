"""`scan --standard fsbp`: the scan's outcomes by the controls of a standard.

One row per control of the standard (bucketwarden.standards): the BucketWarden controls that
check it and how (fixed, detected only), or why none does, and the scan's outcomes of those
controls counted: passed (compliant, remediated), failed (noncompliant), exempted, not checked
(failed, skipped). Outcomes of controls that declare no id of the standard count in no row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bucketwarden.standards import Coverage, coverage

if TYPE_CHECKING:
    from bucketwarden.controls.base import Control
    from bucketwarden.settings import Settings

# The row's counts, and the outcome statuses each counts.
COUNTED = {
    "passed": ("compliant", "remediated"),
    "failed": ("noncompliant",),
    "exempted": ("exempted",),
    "not_checked": ("failed", "skipped"),
}


def standard_rows(
    standard: str,
    controls: Iterable[Control[Any]],
    settings: Settings,
    outcomes: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The standard's rows with the outcomes of their covering controls counted."""
    by_control: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        by_control.setdefault(str(outcome.get("control")), Counter())[outcome["status"]] += 1
    return [_row(row, by_control) for row in coverage(controls, settings, standard)]


def _row(row: Coverage, by_control: dict[str, Counter[str]]) -> dict[str, Any]:
    found = row.to_dict()
    statuses: Counter[str] = Counter()
    for coverer in row.by:
        statuses.update(by_control.get(coverer.control, Counter()))
    for count, counted in COUNTED.items():
        found[count] = sum(statuses[status] for status in counted)
    return found


def write_standard_json(rows: Iterable[dict[str, Any]], stream: TextIO) -> None:
    for row in rows:
        stream.write(json.dumps(row, sort_keys=True) + "\n")


def standard_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("id", "severity", "title", "BucketWarden", "passed", "failed", "exempted"):
        table.add_column(column, justify="right" if column in COUNTED else "left")
    table.add_column("not checked", justify="right")
    for row in rows:
        table.add_row(
            row["id"],
            str(row["severity"] or "-").lower(),
            escape(row["title"]) + _standards_note(row),
            escape(_covered(row)),
            *(_count(row, count) for count in COUNTED),
        )
    return table


def _standards_note(row: dict[str, Any]) -> str:
    if row["lifecycle"] != "active":
        return f"\n[dim]{row['lifecycle']}[/]"
    return f"\n[dim]{escape(', '.join(row['standards']))}[/]"


def _covered(row: dict[str, Any]) -> str:
    covered = [f"{c['control']}: {c['how']}" for c in row["covered_by"]]
    text = "\n".join(covered) if covered else f"not covered: {row['why_not']}"
    return f"{text}\n({row['note']})" if row.get("note") else text


def _count(row: dict[str, Any], count: str) -> str:
    # A row no control covers has no outcomes to count, which is not the same as none found.
    return str(row[count]) if row["covered_by"] else "-"


def print_standard(rows: list[dict[str, Any]], console: Console, title: str) -> None:
    console.print(standard_table(rows, title))
