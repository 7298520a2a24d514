"""The HTML report: escaping, chart and totals, and the page itself in headless chromium.

The browser tests drive a Chromium through its chromedriver (Debian's: `make browser` installs
them). The report's sorting is JavaScript, and only a browser proves it works. Where none is found
the browser tests are skipped, saying why; CI installs Chromium first and sets
BUCKETWARDEN_REQUIRE_BROWSER=1, so there a missing browser fails the run instead.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from bucketwarden.aws import reset_clients
from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings
from bucketwarden_tools.report import describe, summary_line
from bucketwarden_tools.reports_html import COLUMNS, FINDINGS, PAGE_SIZE, render_html
from tests.helpers import REGION, make_bucket, public_bucket, s3, sweeper

TITLE = "Sweep of 123456789012"
# Untrusted text in every place an outcome carries text: the page must show it, never run it.
HOSTILE = '</script><script>document.title="pwned"</script><img src=x onerror="alert(1)">'
DEBIAN_DRIVER = "/usr/bin/chromedriver"


def outcome(bucket: str, control_id: str | None, status: Status, **fields: Any) -> dict[str, Any]:
    return Outcome(bucket, control_id, status, fields.pop("reason", "a reason"), **fields).to_dict()


def hostile_outcome() -> dict[str, Any]:
    return outcome(
        HOSTILE,
        "public-acl",
        Status.NONCOMPLIANT,
        reason=HOSTILE,
        before={"Grants": [{"Grantee": {"Type": "Group", "URI": HOSTILE}, "Permission": "READ"}]},
        region=HOSTILE,
        found_by=HOSTILE,
        warnings=[HOSTILE],
    )


class _Elements(HTMLParser):
    """Tags and text as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> _Elements:
    elements = _Elements()
    elements.feed(page)
    return elements


# -- the document ---------------------------------------------------------------------------------


def test_hostile_text_is_escaped_everywhere() -> None:
    page = render_html([hostile_outcome()], title=HOSTILE)
    elements = parse(page)
    assert elements.tags["script"] == 1  # the report's own, nothing injected
    assert elements.tags["img"] == 0
    assert "pwned" not in "".join(elements.scripts)
    assert "<img" not in page
    assert page.count("&lt;/script&gt;&lt;script&gt;") >= 6  # title, h1, bucket, reason, ...


def test_only_the_page_own_style_and_script_may_run() -> None:
    page = render_html([hostile_outcome()])
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    assert unescape(policy.group(1)).startswith("default-src 'none'; ")
    assert "unsafe-inline" not in policy.group(1)
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing fetched


def test_every_control_with_outcomes_gets_a_bar_in_catalogue_order() -> None:
    outcomes = [
        outcome("b1", "versioning", Status.NONCOMPLIANT),
        outcome("b1", "public-acl", Status.COMPLIANT),
        outcome("b2", "public-acl", Status.REMEDIATED),
        outcome("b2", "public-acl", Status.FAILED),
        outcome("b3", None, Status.IGNORED),
    ]
    page = render_html(outcomes)
    bars = re.findall(r'<g class="bar" data-control="([^"]+)"', page)
    assert bars == ["public-acl", "versioning"]
    acl_bar = page[
        page.index('data-control="public-acl"') : page.index('data-control="versioning"')
    ]
    segments = dict(re.findall(r'data-status="(\w+)" data-count="(\d+)"', acl_bar))
    assert segments == {"compliant": "1", "remediated": "1", "failed": "1"}
    assert control("public-acl").title in acl_bar


def test_totals_summarise_findings_and_statuses() -> None:
    outcomes = [
        outcome("123456789012", "account-public-access-block", Status.COMPLIANT, scope="account"),
        outcome("b1", "public-acl", Status.NONCOMPLIANT),
        outcome("b1", "versioning", Status.REMEDIATED),
        outcome("b2", "versioning", Status.EXEMPTED),
        outcome("b2", "public-acl", Status.COMPLIANT),
        outcome("b3", "versioning", Status.SKIPPED),
    ]
    page = render_html(outcomes)
    assert f'<p id="summary">{escape(summary_line(outcomes))}</p>' in page  # as in the terminal
    assert '<span id="total-findings">3</span>' in page
    section = page[page.index('<section id="totals">') : page.index("</section>")]
    totals = dict(re.findall(r'data-status="(\w+)">.*?<span class="count">(\d+)</span>', section))
    assert totals == {
        "compliant": "2",
        "remediated": "1",
        "exempted": "1",
        "noncompliant": "1",
        "skipped": "1",
    }


def test_each_finding_shows_its_reason_and_fix() -> None:
    before = {"Status": "Suspended"}
    after = {"Status": "Enabled"}
    found = outcome(
        "b1",
        "versioning",
        Status.REMEDIATED,
        reason="versioning is Suspended",
        before=before,
        after=after,
    )
    page = render_html([found])
    fix = f"{describe('versioning', before)}\n→ {describe('versioning', after)}"
    assert f'<td class="fix">{escape(fix)}</td>' in page
    assert "<td>versioning is Suspended</td>" in page


def test_no_outcomes_still_makes_a_page() -> None:
    page = render_html([])
    assert "No control was checked." in page
    assert '<span id="total-findings">0</span>' in page


# -- in the browser --------------------------------------------------------------------------------


BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
REQUIRE_BROWSER = "BUCKETWARDEN_REQUIRE_BROWSER"


def installed_browser() -> tuple[str, str]:
    browser = next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    driver = shutil.which("chromedriver") or (
        DEBIAN_DRIVER if Path(DEBIAN_DRIVER).exists() else None
    )
    if not browser or not driver:
        reason = (
            "the HTML report's browser tests need Chromium and chromedriver "
            f"(found browser={browser}, chromedriver={driver}); `make browser` installs "
            "Debian's chromium and chromium-driver"
        )
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{reason} ({REQUIRE_BROWSER}=1)", pytrace=False)
        pytest.skip(reason)
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless chromium for the module's browser tests."""
    binary, driver_path = installed_browser()
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is given, so Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    yield driver
    driver.quit()


def sweep_outcomes() -> list[dict[str, Any]]:
    """A real sweep's outcomes: one bucket fixed, then a dry run over drifted buckets."""
    make_bucket("alpha-fixed")
    public_bucket("bravo-public")
    make_bucket("delta-drifted")
    s3().create_bucket(
        Bucket="charlie-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    found: list[dict[str, Any]] = []

    def keep(outcomes: list[Outcome]) -> None:
        found.extend(outcome.to_dict() for outcome in outcomes)

    settings = Settings.from_env(CONTROL_IDS, {})
    sweeper(settings).run(["alpha-fixed"], on_outcomes=keep)
    buckets = ["alpha-fixed", "bravo-public", "charlie-eu", "delta-drifted"]
    sweeper(replace(settings, dry_run=True)).run(buckets, on_outcomes=keep)
    return found


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[dict[str, Any]]]:
    """Made once for the module, in its own moto and clean credentials."""
    with pytest.MonkeyPatch.context() as environment:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            environment.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            environment.setenv(name, "testing")
        environment.setenv("AWS_DEFAULT_REGION", REGION)
        reset_clients()
        with mock_aws():
            yield [*sweep_outcomes(), hostile_outcome()]
        reset_clients()


def open_report(browser: WebDriver, outcomes: list[dict[str, Any]], folder: Path) -> WebDriver:
    report = folder / "report.html"
    report.write_text(render_html(outcomes, TITLE), encoding="utf-8")
    browser.get(report.as_uri())
    browser.get_log("browser")  # start each test with an empty console
    return browser


@pytest.fixture
def page(browser: WebDriver, outcomes: list[dict[str, Any]], tmp_path: Path) -> WebDriver:
    return open_report(browser, outcomes, tmp_path)


def column_texts(page: WebDriver, column: str, *, visible_only: bool = False) -> list[str]:
    """The column's cells as rendered, top to bottom (one script call, not one per cell)."""
    return page.execute_script(
        "return Array.from(document.querySelectorAll('#findings tbody tr'))"
        ".filter((row) => !arguments[1] || row.checkVisibility())"
        ".map((row) => row.cells[arguments[0]].innerText);",
        COLUMNS.index(column),
        visible_only,
    )


def header(page: WebDriver, column: str) -> Any:
    return page.find_elements(By.CSS_SELECTOR, "#findings thead th")[COLUMNS.index(column)]


def test_the_report_renders_with_its_chart_and_table(
    page: WebDriver, outcomes: list[dict[str, Any]]
) -> None:
    assert page.title == TITLE  # the hostile outcome ran nothing
    chart = page.find_element(By.ID, "summary-chart")
    assert chart.is_displayed()
    assert chart.size["height"] > 0
    bars = chart.find_elements(By.CSS_SELECTOR, "g.bar")
    assert [bar.get_attribute("data-control") for bar in bars] == [
        control_id
        for control_id in CONTROL_IDS
        if any(o["control"] == control_id for o in outcomes)
    ]
    for bar in bars:
        segments = bar.find_elements(By.CSS_SELECTOR, "rect.segment")
        assert segments
        assert all(segment.size["width"] > 0 for segment in segments)
    assert page.find_element(By.ID, "chart-legend").is_displayed()
    table = page.find_element(By.ID, "findings")
    assert table.is_displayed()
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(outcomes)
    assert [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")] == list(COLUMNS)
    assert HOSTILE in column_texts(page, "bucket")
    assert page.find_elements(By.CSS_SELECTOR, "tbody img") == []


def test_the_page_loads_no_errors_and_breaks_no_policy(page: WebDriver) -> None:
    # A blocked inline style or script (a wrong hash) shows up here as a console error.
    page.refresh()
    errors = [entry["message"] for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


@pytest.mark.parametrize("column", ["bucket", "control", "status", "region"])
def test_clicking_a_header_sorts_then_reverses(page: WebDriver, column: str) -> None:
    unsorted = column_texts(page, column)
    assert unsorted != sorted(unsorted)  # the page opens worst first, not in this column's order
    header(page, column).find_element(By.TAG_NAME, "button").click()
    assert column_texts(page, column) == sorted(unsorted)
    assert header(page, column).get_attribute("aria-sort") == "ascending"
    header(page, column).find_element(By.TAG_NAME, "button").click()
    assert column_texts(page, column) == sorted(unsorted, reverse=True)
    assert header(page, column).get_attribute("aria-sort") == "descending"
    others = [
        header(page, other).get_attribute("aria-sort") for other in COLUMNS if other != column
    ]
    assert others == [None] * (len(COLUMNS) - 1)


def test_sorting_moves_whole_rows(page: WebDriver) -> None:
    rows_before = sorted(
        zip(column_texts(page, "bucket"), column_texts(page, "control"), strict=True)
    )
    header(page, "control").find_element(By.TAG_NAME, "button").click()
    rows_after = zip(column_texts(page, "bucket"), column_texts(page, "control"), strict=True)
    assert sorted(rows_after) == rows_before


def test_the_status_filter_shows_only_findings(
    page: WebDriver, outcomes: list[dict[str, Any]]
) -> None:
    Select(page.find_element(By.ID, "status-filter")).select_by_value("findings")
    shown = column_texts(page, "status", visible_only=True)
    findings = [o["status"] for o in outcomes if o["status"] in FINDINGS]
    assert sorted(shown) == sorted(findings)
    assert page.find_element(By.ID, "shown-count").text == str(len(findings))


def test_a_long_report_shows_a_page_of_rows_at_a_time(browser: WebDriver, tmp_path: Path) -> None:
    count = PAGE_SIZE * 2 + 50
    # Bucket names out of order, so that sorting has work to do.
    outcomes = [
        outcome(f"bucket-{i * 7919 % count:04d}", "versioning", Status.COMPLIANT)
        for i in range(count)
    ]
    page = open_report(browser, outcomes, tmp_path)
    assert len(column_texts(page, "bucket", visible_only=True)) == PAGE_SIZE
    header(page, "bucket").find_element(By.TAG_NAME, "button").click()
    names = sorted(o["bucket"] for o in outcomes)
    assert column_texts(page, "bucket", visible_only=True) == names[:PAGE_SIZE]
    page.find_element(By.ID, "show-more").click()
    assert column_texts(page, "bucket", visible_only=True) == names[: PAGE_SIZE * 2]
    page.find_element(By.ID, "show-all").click()
    assert column_texts(page, "bucket", visible_only=True) == names
    assert not page.find_element(By.ID, "more-rows").is_displayed()
    assert page.find_element(By.ID, "shown-count").text == str(count)
