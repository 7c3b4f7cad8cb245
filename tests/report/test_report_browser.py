"""The report opened in real headless Chromium: every chart draws, nothing errors, no network.

Chromium is driven over the DevTools protocol (tests/report/cdp.py). The screenshot path is
printed (run pytest with -s, or read it from the captured output of a failure).
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from orchestration.report.render import CHART_IDS, write_report

from .cdp import Browser

pytestmark = pytest.mark.browser

ALL_RENDERED = (
    "document.querySelectorAll('[data-chart]').length > 0 && "
    "document.querySelectorAll('[data-chart]').length === "
    "document.querySelectorAll('[data-chart][data-rendered=\"true\"]').length"
)


def test_report_renders_in_headless_chromium(chromium, serving_file, tmp_path, keep_screenshot):
    serving, dates = serving_file
    report = write_report(serving, dates[-1], tmp_path / "reports")
    url = report.resolve().as_uri()

    with Browser(chromium) as browser:
        session = browser.open(url)
        assert browser.wait_until(session, ALL_RENDERED, timeout=45), "not every chart finished drawing"
        browser.pump(0.5)  # late console messages or requests
        charts = browser.evaluate(
            session,
            """Array.from(document.querySelectorAll('[data-chart]')).map(el => ({
                 id: el.getAttribute('data-chart'),
                 svg: el.querySelectorAll('.main-svg').length,
                 marks: el.querySelectorAll('g.point, .hm image').length,
                 width: el.getBoundingClientRect().width,
                 height: el.getBoundingClientRect().height}))""",
        )
        balance_by_segment = browser.evaluate(
            session,
            """(() => { const t = document.querySelector('[data-chart="segment-distribution"]').data[1];
                        return Object.fromEntries(t.y.map((s, i) => [s, t.x[i]])); })()""",
        )
        loans_card = browser.evaluate(session, "document.querySelector('[data-kpi=loans] .value').textContent")
        shot = browser.screenshot(session, tmp_path / "report.png")
        page = browser.page_report(url)

    kept = keep_screenshot(shot, f"report_{dates[-1]}.png")
    print(f"\nreport screenshot: {kept}  (report: {report})")

    assert page.console_errors == [], page.console_errors
    assert page.exceptions == [], page.exceptions
    assert page.log_errors == [], page.log_errors
    assert page.requests == [], f"the report made network requests: {page.requests}"

    assert [c["id"] for c in charts] == list(CHART_IDS)
    for c in charts:
        assert c["svg"] >= 1, f"chart {c['id']} has no plotly .main-svg"
        assert c["marks"] >= 1, f"chart {c['id']} drew no trace"
        assert c["width"] > 300 and c["height"] > 300, c

    # what the browser drew is what the tables hold
    con = duckdb.connect(str(serving), read_only=True)
    expected = dict(con.execute(
        "SELECT segment_code, sum(balance_pen) FROM segment_assignments WHERE as_of_date = ? GROUP BY 1",
        [dates[-1]]).fetchall())
    (loans,), = con.execute("SELECT count(*) FROM segment_assignments WHERE as_of_date = ?", [dates[-1]]).fetchall()
    con.close()
    assert {k: round(Decimal(str(v)), 2) for k, v in balance_by_segment.items()} == expected
    assert loans_card.strip() == f"{loans:,}"

    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(png[20:24], "big")
    assert height > 3000 and len(png) > 100_000  # the whole page, with content


def test_harness_sees_errors_and_requests(chromium, tmp_path):
    """The checks above cannot pass vacuously: a page with an error and a fetch is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom');"
        "fetch('http://127.0.0.1:9/x').catch(() => {}); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    url = bad.resolve().as_uri()
    with Browser(chromium) as browser:
        browser.open(url)
        browser.pump(1.0)
        page = browser.page_report(url)
    assert any("boom" in m for m in page.console_errors)
    assert any("undefinedFunction" in e for e in page.exceptions)
    assert any(r.startswith("http://127.0.0.1:9/") for r in page.requests)
