"""Outcomes for people (a rich table) and for tools (one JSON object per line).

SARIF lives in bucketwarden_tools.sarif; the HTML report in bucketwarden_tools.reports_html.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
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
# Most urgent first: the order of the summary's counts.
STATUS_ORDER = (
    "failed",
    "noncompliant",
    "exempted",
    "remediated",
    "compliant",
    "skipped",
    "ignored",
)
# Outcomes that ask nothing of anyone: a scan's table counts them instead of listing them.
UNREMARKABLE = frozenset({"compliant", "ignored"})
SCOPE_NOUNS = {"bucket": "bucket", "account": "account", "access-point": "access point"}


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
            _reason_and_warnings(outcome),
            change(outcome),
        )
    return table


def _reason_and_warnings(outcome: dict[str, Any]) -> str:
    lines = [str(outcome.get("reason", ""))]
    lines += [f"[yellow]warning:[/] {escape(str(w))}" for w in outcome.get("warnings") or []]
    return "\n".join([escape(lines[0]), *lines[1:]])


def is_noteworthy(outcome: dict[str, Any]) -> bool:
    """A finding, or an outcome with a warning (an exemption that would not be honoured)."""
    return str(outcome.get("status")) not in UNREMARKABLE or bool(outcome.get("warnings"))


def print_outcomes(
    outcomes: list[dict[str, Any]], console: Console, title: str | None = None
) -> None:
    console.print(outcome_table(outcomes, title))


def status_counts(outcomes: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(str(outcome.get("status")) for outcome in outcomes)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def summary_line(outcomes: list[dict[str, Any]]) -> str:
    """E.g. "21 checks on 3 buckets, 1 account: 9 noncompliant, 12 compliant"."""
    subjects = {(o.get("scope", "bucket"), o.get("bucket")) for o in outcomes if o.get("control")}
    per_scope = Counter(scope for scope, _ in subjects)
    on = ", ".join(_plural(per_scope[s], noun) for s, noun in SCOPE_NOUNS.items() if per_scope[s])
    counts = status_counts(o for o in outcomes if o.get("control"))
    statuses = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s])
    checks = _plural(counts.total(), "check")
    return f"{checks} on {on}: {statuses}" if on else "nothing to check"


def control_table(outcomes: list[dict[str, Any]]) -> Table:
    """Counts per control (catalogue order) and status: the shape of a large account at a glance."""
    by_control: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        if outcome.get("control"):
            by_control.setdefault(str(outcome["control"]), Counter())[str(outcome["status"])] += 1
    present = [s for s in STATUS_ORDER if any(counts[s] for counts in by_control.values())]
    table = Table(title="per control", expand=False)
    table.add_column("control")
    for status in present:
        table.add_column(f"[{STATUS_STYLES[status]}]{status}[/]", justify="right")
    ordered = sorted(
        by_control, key=lambda c: CONTROL_IDS.index(c) if c in CONTROL_IDS else len(CONTROL_IDS)
    )
    for control_id in ordered:
        counts = by_control[control_id]
        table.add_row(control_id, *(str(counts[s] or "") for s in present))
    return table


def by_account(outcomes: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The outcomes of each account, accounts in the order they come (the sweep's order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        grouped.setdefault(str(outcome.get("account") or "-"), []).append(outcome)
    return grouped


def several_accounts(outcomes: Iterable[dict[str, Any]]) -> bool:
    """Whether the outcomes name more than one account (outcomes naming none do not count)."""
    return len({o.get("account") for o in outcomes if o.get("account")}) > 1


def account_line(account: str, outcomes: list[dict[str, Any]]) -> str:
    """One account's totals, or why it was not swept (its only line has no control)."""
    if not any(o.get("control") for o in outcomes):
        return f"account {account}: {outcomes[0].get('reason')}"
    return f"account {account}: {summary_line(outcomes)}"


def print_report(
    outcomes: list[dict[str, Any]], console: Console, title: str | None = None
) -> None:
    """A sweep for people: every finding with its before → after, counts per control, a total.
    Outcomes of several accounts: the findings account by account, and a line per account."""
    grouped = several_accounts(outcomes)
    accounts = by_account(outcomes)
    if grouped:
        for account, found in accounts.items():
            _print_findings(found, console, f"account {account}" + (f": {title}" if title else ""))
    else:
        _print_findings(outcomes, console, title)
    if any(o.get("control") for o in outcomes):
        console.print(control_table(outcomes))
    if grouped:
        for account, found in accounts.items():
            console.print(escape(account_line(account, found)), highlight=False)
    console.print(summary_line(outcomes), highlight=False)


def _print_findings(outcomes: list[dict[str, Any]], console: Console, title: str | None) -> None:
    findings = [o for o in outcomes if is_noteworthy(o)]
    if findings:
        console.print(outcome_table(findings, title))
    else:
        console.print(f"[bold green]no findings[/]{f' ({escape(title)})' if title else ''}")
