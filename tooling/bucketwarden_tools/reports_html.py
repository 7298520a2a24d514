"""A single-file HTML report: totals, a chart of statuses per control, a sortable table.

The file stands alone (inline CSS, SVG and script, nothing fetched), so that it can be attached to
a CI run, mailed or opened offline. Bucket names, reasons and warnings come from AWS and from
people: every text is escaped, no outcome data reaches the script (it reads the table), and a
Content-Security-Policy lets only this page's own style and script run, by their hashes.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Iterable
from html import escape
from typing import Any

from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.outcome import REPORTED, Status
from bucketwarden_tools.report import (
    STATUS_ORDER,
    account_line,
    by_account,
    change,
    several_accounts,
    status_counts,
    summary_line,
)

# Stacking order in the chart (good to bad, then not checked) and each status's colour.
STATUS_COLOURS: dict[str, str] = {
    Status.COMPLIANT.value: "#2e7d32",
    Status.REMEDIATED.value: "#1e88e5",
    Status.EXEMPTED.value: "#8e24aa",
    Status.NONCOMPLIANT.value: "#f9a825",
    Status.FAILED.value: "#c62828",
    Status.SKIPPED.value: "#90a4ae",
    Status.IGNORED.value: "#cfd8dc",
}
OTHER_COLOUR = "#616161"
FINDINGS = frozenset(status.value for status in REPORTED)
COLUMNS = ("bucket", "control", "status", "reason", "fix", "region", "found by")

# Rows shown at first (and added per "show more"): enough to read, few enough to open fast.
PAGE_SIZE = 200
ROW_HEIGHT = 40
LABEL_WIDTH = 400
BAR_WIDTH = 440
COUNT_WIDTH = 80

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #212121; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
#totals ul, .legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 1rem; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .35em;
  background: var(--colour); border-radius: 2px; }
#summary-chart { width: 100%; max-width: 940px; height: auto; }
#summary-chart .segment { fill: var(--colour); }
#summary-chart .control-id { font-size: 13px; font-weight: 600; }
#summary-chart .control-title, #summary-chart .count { font-size: 11px; fill: #616161; }
table { border-collapse: collapse; width: 100%; }
.table-frame { overflow-x: auto; }
th, td { border-bottom: 1px solid #e0e0e0; padding: .35rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th, td:nth-child(2), td:nth-child(3) { white-space: nowrap; }
th button { font: inherit; font-weight: 600; border: 0; background: none; padding: 0;
  cursor: pointer; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
td.fix { white-space: pre-line; font-family: ui-monospace, monospace; font-size: 12px; }
.badge::before { content: ""; display: inline-block; width: .7em; height: .7em;
  margin-right: .35em; border-radius: 50%; background: var(--colour); }
.warnings { margin: .25rem 0 0; padding-left: 1.1rem; color: #6d4c41; }
"""

# Sorts by a cell's text, as Python sorts strings (code units, stable), filters by status, and
# shows a page of rows at a time: rows left hidden are not laid out, which keeps a report of
# many thousand outcomes quick to open and to sort.
SCRIPT = """
"use strict";
(() => {
  const table = document.getElementById("findings");
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const filter = document.getElementById("status-filter");
  const pageSize = Number(table.dataset.pageSize);
  let limit = pageSize;
  const wanted = (row) => filter.value === "all"
    || (filter.value === "findings" ? row.dataset.finding === "true"
      : row.dataset.status === filter.value);
  const show = () => {
    let matching = 0;
    for (const row of body.rows) {
      const match = wanted(row);
      row.hidden = !match || matching >= limit;
      matching += match ? 1 : 0;
    }
    document.getElementById("shown-count").textContent = String(Math.min(limit, matching));
    document.getElementById("matching-count").textContent = String(matching);
    document.getElementById("more-rows").hidden = matching <= limit;
  };
  const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  const sortBy = (header, column) => {
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    const sign = ascending ? 1 : -1;
    const keyed = Array.from(body.rows, (row) => [row.cells[column].textContent, row]);
    keyed.sort((a, b) => sign * compare(a[0], b[0]));
    const sorted = document.createDocumentFragment();
    keyed.forEach(([, row]) => sorted.appendChild(row));
    body.appendChild(sorted);
    headers.forEach((other) => other.removeAttribute("aria-sort"));
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    show();
  };
  headers.forEach((header, column) => {
    header.querySelector("button").addEventListener("click", () => sortBy(header, column));
  });
  filter.addEventListener("change", () => {
    limit = pageSize;
    show();
  });
  document.getElementById("show-more").addEventListener("click", () => {
    limit += pageSize;
    show();
  });
  document.getElementById("show-all").addEventListener("click", () => {
    limit = Infinity;
    show();
  });
})();
"""


def render_html(outcomes: list[dict[str, Any]], title: str = "BucketWarden report") -> str:
    """The whole report as one HTML document."""
    style = STYLE + status_style(statuses_of(outcomes))
    policy = f"default-src 'none'; style-src '{csp_hash(style)}'; script-src '{csp_hash(SCRIPT)}'"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{style}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        totals_section(outcomes),
        "<h2>Statuses per control</h2>",
        summary_chart(outcomes),
        legend(statuses_of(outcomes)),
        *accounts_section(outcomes),
        "<h2>Outcomes</h2>",
        status_filter(outcomes),
        outcome_table(outcomes),
        more_rows(outcomes),
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "sha256-" + base64.b64encode(digest).decode()


def statuses_of(outcomes: Iterable[dict[str, Any]]) -> list[str]:
    """The statuses present, known ones in stacking order, then any other alphabetically."""
    present = {str(outcome.get("status")) for outcome in outcomes}
    known = [status for status in STATUS_COLOURS if status in present]
    return known + sorted(present - set(STATUS_COLOURS))


def status_class(status: str) -> str:
    # Only known statuses become class names: an outcome read from a file may say anything.
    return f"status-{status}" if status in STATUS_COLOURS else "status-other"


def status_style(statuses: list[str]) -> str:
    rules = [f".status-{status} {{ --colour: {STATUS_COLOURS[status]}; }}" for status in statuses]
    rules.append(f".status-other {{ --colour: {OTHER_COLOUR}; }}")
    return "\n".join(rules) + "\n"


def is_finding(outcome: dict[str, Any]) -> bool:
    return outcome.get("status") in FINDINGS


def totals_section(outcomes: list[dict[str, Any]]) -> str:
    """The terminal report's summary line, the number of findings, a count per status."""
    findings = sum(1 for outcome in outcomes if is_finding(outcome))
    counts = status_counts(outcomes)
    items = "".join(
        f'<li class="total" data-status="{escape(status)}">'
        f'<span class="swatch {status_class(status)}"></span>{escape(status)}: '
        f'<span class="count">{counts[status]}</span></li>'
        for status in statuses_of(outcomes)
    )
    return (
        '<section id="totals">'
        f'<p id="summary">{escape(summary_line(outcomes))}</p>'
        f'<p><span id="total-findings">{findings}</span> findings '
        "(noncompliant, remediated, exempted or failed).</p>"
        f"<ul>{items}</ul></section>"
    )


def counts_by_control(outcomes: Iterable[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Status counts per control, catalogue order first; outcomes without a control left out."""
    counts: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        if outcome.get("control"):
            counts.setdefault(str(outcome["control"]), Counter())[str(outcome.get("status"))] += 1
    return dict(sorted(counts.items(), key=lambda item: catalogue_position(item[0])))


def catalogue_position(control_id: str | None) -> tuple[int, str]:
    if control_id in CONTROL_IDS:
        return CONTROL_IDS.index(str(control_id)), ""
    return len(CONTROL_IDS), str(control_id or "")


def control_title(control_id: str) -> str:
    return control(control_id).title if control_id in CONTROL_IDS else ""


def summary_chart(outcomes: list[dict[str, Any]]) -> str:
    bars = counts_by_control(outcomes)
    statuses = statuses_of(outcomes)
    width = LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH
    height = max(len(bars), 1) * ROW_HEIGHT
    rows = [
        bar(control_id, counts, statuses, index)
        for index, (control_id, counts) in enumerate(bars.items())
    ]
    empty = "" if bars else f'<text x="0" y="{ROW_HEIGHT // 2}">No control was checked.</text>'
    return (
        f'<svg id="summary-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'aria-labelledby="summary-chart-title">'
        '<title id="summary-chart-title">Outcomes per control, by status</title>'
        f"{''.join(rows)}{empty}</svg>"
    )


def bar(control_id: str, counts: Counter[str], statuses: list[str], index: int) -> str:
    """One control's row: its id and title, a bar split by status, the number of outcomes."""
    total = sum(counts.values())
    summary = ", ".join(f"{counts[status]} {status}" for status in statuses if counts[status])
    segments: list[str] = []
    x = float(LABEL_WIDTH)
    for status in statuses:
        if not counts[status]:
            continue
        width = BAR_WIDTH * counts[status] / total
        segments.append(
            f'<rect class="segment {status_class(status)}" data-status="{escape(status)}" '
            f'data-count="{counts[status]}" x="{x:.2f}" y="6" width="{width:.2f}" '
            f'height="{ROW_HEIGHT - 12}"><title>{escape(control_id)}: {counts[status]} '
            f"{escape(status)}</title></rect>"
        )
        x += width
    return (
        f'<g class="bar" data-control="{escape(control_id)}" '
        f'transform="translate(0 {index * ROW_HEIGHT})">'
        f"<title>{escape(control_id)}: {escape(summary)}</title>"
        f'<text class="control-id" x="0" y="17">{escape(control_id)}</text>'
        f'<text class="control-title" x="0" y="32">{escape(control_title(control_id))}</text>'
        f"{''.join(segments)}"
        f'<text class="count" x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="24">{total}</text></g>'
    )


def legend(statuses: list[str]) -> str:
    items = "".join(
        f'<li data-status="{escape(status)}"><span class="swatch {status_class(status)}">'
        f"</span>{escape(status)}</li>"
        for status in statuses
    )
    return f'<ul id="chart-legend" class="legend" aria-label="Legend">{items}</ul>'


def status_filter(outcomes: list[dict[str, Any]]) -> str:
    options = [("all", "all statuses"), ("findings", "findings only")]
    options += [(status, status) for status in statuses_of(outcomes)]
    rendered = "".join(
        f'<option value="{escape(value)}">{escape(label)}</option>' for value, label in options
    )
    shown = min(len(outcomes), PAGE_SIZE)
    return (
        f'<p><label>Show <select id="status-filter">{rendered}</select></label> '
        f'(<span id="shown-count">{shown}</span> of <span id="matching-count">{len(outcomes)}'
        "</span> rows; click a column header to sort)</p>"
    )


def more_rows(outcomes: list[dict[str, Any]]) -> str:
    hidden = "" if len(outcomes) > PAGE_SIZE else " hidden"
    return (
        f'<p id="more-rows"{hidden}><button type="button" id="show-more">Show {PAGE_SIZE} more'
        '</button> <button type="button" id="show-all">Show all</button></p>'
        f"<noscript><p>Without JavaScript only the first {PAGE_SIZE} rows show.</p></noscript>"
    )


def severity_order(outcome: dict[str, Any]) -> tuple[int, str, tuple[int, str]]:
    """Most urgent first: the table opens on what needs a person."""
    status = str(outcome.get("status"))
    rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)
    return rank, str(outcome.get("bucket") or ""), catalogue_position(outcome.get("control"))


def columns(outcomes: list[dict[str, Any]]) -> tuple[str, ...]:
    """COLUMNS, after an account column when the outcomes are of several accounts."""
    return ("account", *COLUMNS) if several_accounts(outcomes) else COLUMNS


def accounts_section(outcomes: list[dict[str, Any]]) -> list[str]:
    """Several accounts: a line per account (its totals, or why it was not swept)."""
    if not several_accounts(outcomes):
        return []
    items = "".join(
        f"<li>{escape(account_line(account, found))}</li>"
        for account, found in by_account(outcomes).items()
    )
    return ["<h2>Accounts</h2>", f'<ul id="accounts">{items}</ul>']


def outcome_table(outcomes: list[dict[str, Any]]) -> str:
    shown = columns(outcomes)
    headers = "".join(
        f'<th scope="col"><button type="button">{name}</button></th>' for name in shown
    )
    grouped = "account" in shown
    # Grouped by account (in the sweep's order), most urgent first within each.
    position = {account: index for index, account in enumerate(by_account(outcomes))}
    ordered = sorted(
        outcomes,
        key=lambda o: (position[str(o.get("account") or "-")] if grouped else 0, severity_order(o)),
    )
    rows = "\n".join(
        table_row(o, hidden=index >= PAGE_SIZE, account=grouped) for index, o in enumerate(ordered)
    )
    return (
        f'<div class="table-frame"><table id="findings" data-page-size="{PAGE_SIZE}">'
        f"<thead><tr>{headers}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>"
    )


def table_row(outcome: dict[str, Any], *, hidden: bool = False, account: bool = False) -> str:
    """One outcome; cells hold bare text (no padding) because sorting compares cell texts."""
    status = str(outcome.get("status"))
    control_id = str(outcome.get("control") or "")
    warnings = outcome.get("warnings") or []
    notes = "".join(f"<li>{escape(str(warning))}</li>" for warning in warnings)
    cells = (
        *([f"<td>{escape(str(outcome.get('account') or ''))}</td>"] if account else []),
        f'<td title="{escape(str(outcome.get("scope") or ""))}">'
        f"{escape(str(outcome.get('bucket') or ''))}</td>",
        f'<td title="{escape(control_title(control_id))}">{escape(control_id)}</td>',
        f'<td><span class="badge {status_class(status)}">{escape(status)}</span></td>',
        f"<td>{escape(str(outcome.get('reason') or ''))}"
        + (f'<ul class="warnings">{notes}</ul>' if notes else "")
        + "</td>",
        f'<td class="fix">{escape(change(outcome))}</td>',
        f"<td>{escape(str(outcome.get('region') or ''))}</td>",
        f"<td>{escape(str(outcome.get('found_by') or ''))}</td>",
    )
    return (
        f'<tr data-status="{escape(status)}" data-finding="{str(is_finding(outcome)).lower()}"'
        f"{' hidden' if hidden else ''}>{''.join(cells)}</tr>"
    )
