"""The report's figures equal SQL over the published tables, and the page is self-contained.

Expected values are recomputed here with SQL written independently of the report's queries
(CASE sums instead of FILTER, window functions instead of joins for roll rates).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import duckdb
import plotly.offline
import pytest

from orchestration.report.data import ReportDataError, load_report_data, published_dates
from orchestration.report.render import CHART_IDS, PLOTLY_JS, report_path, write_report
from orchestration.report.synthetic import DPD_BUCKETS_SEED

from . import expected as recomputed
from .pagedata import Page


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, serving_file):
    serving, dates = serving_file
    out = tmp_path_factory.mktemp("reports")
    path = write_report(serving, dates[-1], out)
    return Page(path), serving, dates


def sql(serving, query, params=()):
    con = duckdb.connect(str(serving), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def test_kpis_equal_sql_over_segment_assignments(rendered):
    page, serving, dates = rendered
    day, prev = dates[-1], dates[-2]
    (loans, customers, balance, par30, par90, provision), = sql(
        serving,
        """SELECT count(loan_id), count(DISTINCT customer_key), sum(balance_pen),
                  sum(CASE WHEN dpd > 30 THEN balance_pen ELSE 0 END) / sum(balance_pen),
                  sum(CASE WHEN dpd > 90 THEN balance_pen ELSE 0 END) / sum(balance_pen),
                  sum(provision_pen)
           FROM segment_assignments WHERE as_of_date = ?""",
        [day],
    )
    assert loans > 1000 and 0 < par90 < par30 < 1  # the fixture is not degenerate
    assert int(page.kpi("loans")) == loans
    assert int(page.kpi("customers")) == customers
    assert Decimal(page.kpi("balance")) == balance
    assert Decimal(page.kpi("provision")) == provision
    assert float(page.kpi("par30")) == pytest.approx(float(par30), rel=1e-12)
    assert float(page.kpi("par90")) == pytest.approx(float(par90), rel=1e-12)

    # change vs the previous published date, as printed on the balance card
    (prev_balance,), = sql(serving, "SELECT sum(balance_pen) FROM segment_assignments WHERE as_of_date = ?", [prev])
    diff = balance - prev_balance
    sign = "+" if diff > 0 else "−"
    assert f"{sign}S/ {abs(diff):,.2f}" in page.text
    assert f"Fecha publicada anterior: {prev.isoformat()}" in page.text


def test_segments_equal_summary_and_assignments(rendered):
    page, serving, dates = rendered
    rows = page.rows("data-segment")
    expected = sql(
        serving,
        "SELECT segment_code, count(*), sum(balance_pen), sum(provision_pen) FROM segment_assignments "
        "WHERE as_of_date = ? GROUP BY 1",
        [dates[-1]],
    )
    assert len(expected) >= 8
    assert set(rows) == {r[0] for r in expected}
    for code, loans, balance, provision in expected:
        assert int(rows[code]["data-loans"]) == loans, code
        assert Decimal(rows[code]["data-balance"]) == balance, code
        assert Decimal(rows[code]["data-provision"]) == provision, code
    # the chart shows the same balances
    fig = page.specs["segment-distribution"]
    balance_trace = fig["data"][1]
    shown = dict(zip(balance_trace["y"], balance_trace["x"]))
    for code, _, balance, _ in expected:
        assert shown[code] == pytest.approx(float(balance))
    # each segment's strategy is named next to it
    for code, strategy in sql(serving, "SELECT segment_code, strategy_code FROM segment_summary WHERE as_of_date = ?",
                              [dates[-1]]):
        assert f"{code} → {strategy}" in fig["data"][0]["customdata"]


def test_departments_credit_types_and_sbs_equal_sql(rendered):
    page, serving, dates = rendered
    day = dates[-1]
    deps = page.rows("data-department")
    for code, loans, balance, par30 in sql(
        serving,
        "SELECT department_code, count(*), sum(balance_pen), sum(CASE WHEN dpd > 30 THEN balance_pen ELSE 0 END) "
        "FROM segment_assignments WHERE as_of_date = ? GROUP BY 1",
        [day],
    ):
        assert int(deps[code]["data-loans"]) == loans
        assert Decimal(deps[code]["data-balance"]) == balance
        assert Decimal(deps[code]["data-par30-balance"]) == par30
    assert "07 Callao" in page.text and "01 Amazonas" in page.text and "25 Ucayali" in page.text

    types = page.rows("data-credit-type")
    for code, balance in sql(serving, "SELECT credit_type, sum(balance_pen) FROM segment_assignments "
                                      "WHERE as_of_date = ? GROUP BY 1", [day]):
        assert Decimal(types[code]["data-balance"]) == balance

    sbs = page.rows("data-sbs")
    own = dict(sql(serving, "SELECT sbs_category, sum(balance_pen) FROM segment_assignments WHERE as_of_date = ? "
                            "GROUP BY 1", [day]))
    aligned = {c: (b, p) for c, b, p in sql(
        serving, "SELECT sbs_category_aligned, sum(balance_pen), sum(provision_pen) FROM segment_assignments "
                 "WHERE as_of_date = ? GROUP BY 1", [day])}
    assert set(sbs) == set(own) | set(aligned)
    for cat, row in sbs.items():
        assert Decimal(row["data-balance-own"]) == own.get(cat, 0)
        assert Decimal(row["data-balance-aligned"]) == aligned.get(cat, (0, 0))[0]
        assert Decimal(row["data-provision"]) == aligned.get(cat, (0, 0))[1]
    assert list(sbs) == [c for c in ("NOR", "CPP", "DEF", "DUD", "PER") if c in sbs]


def test_migration_heatmap_equals_segment_migration(rendered):
    page, serving, dates = rendered
    fig = page.specs["segment-migration"]
    heat = fig["data"][0]
    cells = {}
    for y, row in zip(heat["y"], heat["customdata"]):
        for x, cell in zip(heat["x"], row):
            loans = int(cell[0].replace(",", ""))
            if loans:
                cells[(y.split(" ")[0], x.split(" ")[0])] = loans
    expected = {(f, t): n for f, t, n in sql(
        serving, "SELECT from_segment, to_segment, loans FROM segment_migration WHERE as_of_date = ?", [dates[-1]])}
    assert cells == expected
    assert any(f == "NUEVO" for f, _ in expected) and any(t == "SALIDA" for _, t in expected)


def test_roll_rates_equal_window_function_computation(rendered):
    """Roll outcomes recomputed with LAG/LEAD per loan over the published dates."""
    page, serving, dates = rendered
    expected = dict(sql(
        serving,
        """WITH d AS (SELECT as_of_date, lead(as_of_date) OVER (ORDER BY as_of_date) AS next_date
                      FROM (SELECT DISTINCT as_of_date FROM segment_summary)),
           s AS (SELECT a.loan_id, a.as_of_date, d.next_date, a.dpd, a.dpd_bucket, a.balance_pen,
                        lead(a.as_of_date) OVER w AS lead_date, lead(a.dpd) OVER w AS lead_dpd,
                        lead(a.dpd_bucket) OVER w AS lead_bucket
                 FROM segment_assignments a JOIN d USING (as_of_date)
                 WINDOW w AS (PARTITION BY a.loan_id ORDER BY a.as_of_date))
           SELECT CASE WHEN lead_date IS DISTINCT FROM next_date THEN 'salio'
                       WHEN lead_dpd = 0 THEN 'curo'
                       WHEN lead_bucket = dpd_bucket THEN 'se_mantuvo'
                       WHEN lead_dpd > dpd THEN 'empeoro' ELSE 'mejoro' END,
                  sum(balance_pen)
           FROM s WHERE dpd > 0 AND next_date IS NOT NULL GROUP BY 1""",
    ))
    shown = {k: Decimal(v["data-balance"]) for k, v in page.rows("data-roll").items()}
    assert expected["se_mantuvo"] > 0 and expected["curo"] > 0 and expected["empeoro"] > 0
    assert shown == {k: expected.get(k, Decimal(0)) for k in shown}
    assert "Definición." in page.text and "loan_id" in page.text


def test_page_is_self_contained_and_small(rendered):
    page, _, _ = rendered
    assert page.script_srcs == [] and page.links == []
    assert page.text.count("plotly.js (cartesian - minified)") == 1  # inlined once
    assert "Content-Security-Policy" in page.text
    assert set(page.specs) == set(CHART_IDS)
    assert {e["data-chart"] for e in page.with_attr("data-chart")} == set(CHART_IDS)
    assert page.path.stat().st_size < 5_000_000
    assert '<html lang="es">' in page.text and "Reporte diario de cartera" in page.text


def test_vendored_plotly_matches_the_python_package():
    head = PLOTLY_JS.read_text(encoding="utf-8")[:200]
    assert f"v{plotly.offline.get_plotlyjs_version()}" in head
    assert (PLOTLY_JS.parent / "LICENSE.plotly.js").read_text().startswith("MIT License")
    assert PLOTLY_JS.stat().st_size < 1_600_000


def test_first_date_renders_without_previous(serving_file, tmp_path):
    serving, dates = serving_file
    page = Page(write_report(serving, dates[0], tmp_path))
    assert "sin fecha anterior" in page.text
    charts = {e["data-chart"] for e in page.with_attr("data-chart")}
    assert {"segment-migration", "roll-rates", "roll-matrix"}.isdisjoint(charts)
    assert {e["data-chart-missing"] for e in page.with_attr("data-chart-missing")} == {
        "segment-migration", "roll-rates", "roll-matrix"}


def test_quality_section_reads_run_audit_and_quarantine(serving_file, tmp_path):
    serving, dates = serving_file
    day = dates[-1]
    wh = tmp_path / "cartera.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.quarantine (as_of_date DATE, run_id VARCHAR, file_name VARCHAR, "
                "line_number INTEGER, rule VARCHAR, column_name VARCHAR, raw_values VARCHAR)")
    # 2 + 1 rows on the day (run_audit says 3), 5 rows on another day that must not count
    con.execute("INSERT INTO raw.quarantine VALUES "
                "(?, 'r', 'loans.csv', 7, 'enum_credit_type', 'credit_type', '{}'),"
                "(?, 'r', 'loans.csv', 9, 'enum_credit_type', 'credit_type', '{}'),"
                "(?, 'r', 'loans.csv', 12, 'duplicate_loan_id', 'loan_id', '{}')", [day] * 3)
    con.execute("INSERT INTO raw.quarantine SELECT ?, 'r', 'loans.csv', i, 'x', NULL, '{}' FROM range(5) t(i)",
                [dates[-2]])
    # line 9 also breaks a second rule (one quarantine row per rule, one quarantined line), and a
    # later re-delivery of the day that was rejected (run r2) keeps its own rows: neither counts
    con.execute("INSERT INTO raw.quarantine VALUES (?, 'r', 'loans.csv', 9, 'range_dpd', 'days_past_due', '{}'),"
                "(?, 'r2', 'loans.csv', 4, 'y', NULL, '{}')", [day, day])
    con.execute("CREATE TABLE raw.ingest_files (as_of_date DATE, run_id VARCHAR, file_name VARCHAR)")
    con.execute("INSERT INTO raw.ingest_files VALUES (?, 'r', 'loans.csv'), (?, 'r', 'loans.csv')",
                [day, dates[-2]])
    con.close()
    page = Page(write_report(serving, day, tmp_path / "out", warehouse_db=wh, quarantine_threshold=0.01))

    (read, quarantined, published), = sql(
        serving, "SELECT rows_read, rows_quarantined, rows_published FROM run_audit WHERE as_of_date = ?", [day])
    q = page.rows("data-quality")
    assert int(q["rows-read"]["data-value"]) == read
    assert int(q["rows-quarantined"]["data-value"]) == quarantined == 3
    assert int(q["rows-published"]["data-value"]) == published
    assert "<code>enum_credit_type</code></td><td>credit_type</td><td class=\"num\">2</td>" in page.text
    assert "<code>duplicate_loan_id</code>" in page.text and "<code>x</code>" not in page.text
    assert "<code>range_dpd</code>" in page.text and "<code>y</code>" not in page.text
    checks = page.with_attr("data-check-passed")
    assert len(checks) >= 5 and all(c["data-check-passed"] == "true" for c in checks)
    assert q["checks-passed"]["data-value"] == f"{len(checks)}/{len(checks)}"

    # a warehouse that disagrees with run_audit shows a failed check, not a silent pass
    con = duckdb.connect(str(wh))
    con.execute("DELETE FROM raw.quarantine WHERE rule = 'duplicate_loan_id'")
    con.close()
    page = Page(write_report(serving, day, tmp_path / "out2", warehouse_db=wh))
    failed = [c for c in page.with_attr("data-check-passed") if c["data-check-passed"] == "false"]
    assert len(failed) == 1
    assert "raw.quarantine (líneas distintas): 2 · run_audit: 3" in page.text


def test_write_is_atomic_and_replaces(serving_file, tmp_path):
    serving, dates = serving_file
    target = report_path(tmp_path, dates[-1])
    target.write_text("old")
    path = write_report(serving, dates[-1], tmp_path)
    assert path == target and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp file left
    assert not [p for p in tmp_path.rglob("*.tmp")]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_unpublished_date_and_missing_serving_file_are_clear_errors(serving_file, tmp_path):
    serving, dates = serving_file
    saturday = dates[-1] + dt.timedelta(days=(5 - dates[-1].weekday()) % 7 or 7)
    with pytest.raises(ReportDataError, match=f"segment_summary has no rows for as_of_date {saturday}"):
        write_report(serving, saturday, tmp_path)
    with pytest.raises(ReportDataError, match="serving file not found"):
        write_report(tmp_path / "nope.duckdb", dates[-1], tmp_path)
    assert published_dates(serving, str(dates[1]), str(dates[2])) == dates[1:3]


def test_codes_from_data_are_escaped(serving_file, tmp_path):
    serving, dates = serving_file
    copy = tmp_path / "serving.duckdb"
    copy.write_bytes(serving.read_bytes())
    evil = "X</script><img src=x onerror=alert(1)>"
    con = duckdb.connect(str(copy))
    for table in ("segment_assignments", "segment_summary"):
        con.execute(f"UPDATE {table} SET segment_code = ? WHERE segment_code = 'TARDIA' AND as_of_date = ?",
                    [evil, dates[-1]])
    con.close()
    page = Page(write_report(copy, dates[-1], tmp_path / "out"))
    assert evil not in page.text
    assert page.links == [] and page.scripts == 3
    assert evil in page.rows("data-segment")  # still shown, as text


def test_actions_by_channel_equal_sql(rendered):
    page, serving, dates = rendered
    expected = {c: (n, b) for c, n, b in sql(
        serving,
        "SELECT channel, count(*), sum(balance_pen) FROM segment_assignments "
        "WHERE as_of_date = ? AND strategy_code <> 'SIN_ACCION' GROUP BY 1",
        [dates[-1]],
    )}
    shown = page.rows("data-channel")
    assert len(expected) >= 4
    assert {c: (int(r["data-loans"]), Decimal(r["data-balance"])) for c, r in shown.items()} == expected
    fig = page.specs["actions-by-channel"]
    assert sum(sum(t["y"]) for t in fig["data"]) == sum(n for n, _ in expected.values())


def test_roll_rates_are_read_from_bucket_roll_rates(serving_file):
    """Every pair of the window comes from the mart (no join at render time) and equals the
    outcomes recomputed per date with LAG/LEAD over segment_assignments; the mart's rows equal
    the bucket flows recomputed the same way."""
    serving, dates = serving_file
    data = load_report_data(serving, dates[-1])
    assert data.roll_pairs_joined == 0
    con = duckdb.connect(str(serving), read_only=True)
    try:
        expected = recomputed.expected_outcomes(con)
        flows = recomputed.flows(con)
        table = {(d, f, t): (p, n, pb, b) for d, p, f, t, n, pb, b in con.execute(
            "SELECT as_of_date, previous_date, from_bucket, to_bucket, loans, previous_balance_pen, balance_pen "
            "FROM bucket_roll_rates").fetchall()}
    finally:
        con.close()
    assert recomputed.report_outcomes(data) == expected
    assert {d for d, _ in expected} == set(dates[1:])
    assert table == flows

    # the transition matrix of the last pair: bucket x bucket, balance on the earlier date
    # (today's for new loans), buckets in dpd order
    last = {(f, t): (n, pb if f != "NUEVO" else b) for (d, f, t), (_, n, pb, b) in flows.items() if d == dates[-1]}
    assert {(r["from_bucket"], r["to_bucket"]): (r["loans"], r["balance_pen"]) for r in data.roll_matrix} == last
    (order,), = sql(serving, "SELECT list(dpd_bucket ORDER BY m) FROM (SELECT dpd_bucket, min(dpd) AS m "
                             "FROM segment_assignments WHERE as_of_date IN (?, ?) GROUP BY 1)", dates[-2:])
    assert data.bucket_order == order


@pytest.mark.parametrize("damage", ["no table", "empty table", "one date missing", "stale previous date"])
def test_roll_rates_without_usable_mart_rows_are_joined_with_same_figures(serving_file, tmp_path, damage):
    """A serving file published before the mart existed (or with a date the mart lacks, or rows
    that pair a date with another previous date) gives the same page: those pairs are joined."""
    serving, dates = serving_file
    copy = tmp_path / "serving.duckdb"
    copy.write_bytes(serving.read_bytes())
    con = duckdb.connect(str(copy))
    if damage == "no table":
        con.execute("DROP TABLE bucket_roll_rates")
    elif damage == "empty table":
        con.execute("DELETE FROM bucket_roll_rates")
    elif damage == "one date missing":
        con.execute("DELETE FROM bucket_roll_rates WHERE as_of_date = ?", [dates[-1]])
    else:
        con.execute("UPDATE bucket_roll_rates SET previous_date = ? WHERE as_of_date = ?", [dates[0], dates[3]])
    con.close()
    data = load_report_data(copy, dates[-1])
    assert data.roll_pairs_joined == (1 if damage in ("one date missing", "stale previous date") else len(dates) - 1)
    reference = load_report_data(serving, dates[-1])
    assert data.roll_rates == reference.roll_rates and data.roll_entries == reference.roll_entries
    assert data.roll_matrix == reference.roll_matrix and data.bucket_order == reference.bucket_order
    page, ref_page = Page(write_report(copy, dates[-1], tmp_path / "a")), Page(write_report(serving, dates[-1], tmp_path / "b"))
    assert page.rows("data-roll") == ref_page.rows("data-roll")
    assert page.specs["roll-rates"]["data"] == ref_page.specs["roll-rates"]["data"]
    assert page.specs["roll-matrix"]["data"] == ref_page.specs["roll-matrix"]["data"]


def test_republished_date_changes_the_roll_rates(serving_file, tmp_path):
    """Roll figures follow what is published now: a re-published date (its mart rows replaced
    as publish does) changes the page; nothing is served from an earlier render."""
    serving, dates = serving_file
    copy = tmp_path / "serving.duckdb"
    copy.write_bytes(serving.read_bytes())
    before = Page(write_report(copy, dates[-1], tmp_path / "reports"))
    con = duckdb.connect(str(copy))
    # re-publish dates[-1] with every past-due loan cured, mart rows rebuilt from the new rows
    con.execute("UPDATE segment_assignments SET dpd = 0, dpd_bucket = '0' WHERE as_of_date = ?", [dates[-1]])
    con.execute("DELETE FROM bucket_roll_rates WHERE as_of_date = ?", [dates[-1]])
    con.execute(
        f"""INSERT INTO bucket_roll_rates
           SELECT ?, ?, m.f, m.t, fb.min_dpd, tb.min_dpd, m.n, m.pb, m.b
           FROM (SELECT coalesce(p.dpd_bucket, 'NUEVO') AS f, coalesce(c.dpd_bucket, 'SALIDA') AS t, count(*) AS n,
                        sum(coalesce(p.balance_pen, 0)) AS pb, sum(coalesce(c.balance_pen, 0)) AS b
                 FROM (SELECT * FROM segment_assignments WHERE as_of_date = ?) c
                 FULL JOIN (SELECT * FROM segment_assignments WHERE as_of_date = ?) p USING (loan_id)
                 GROUP BY ALL) m
           LEFT JOIN read_csv('{DPD_BUCKETS_SEED}', all_varchar = true) fb ON fb.dpd_bucket = m.f
           LEFT JOIN read_csv('{DPD_BUCKETS_SEED}', all_varchar = true) tb ON tb.dpd_bucket = m.t""",
        [dates[-1], dates[-2], dates[-1], dates[-2]],
    )
    con.close()
    after = Page(write_report(copy, dates[-1], tmp_path / "reports"))
    assert after.rows("data-roll") != before.rows("data-roll")
    data = load_report_data(copy, dates[-1])
    assert "curo" in {r["outcome"] for r in data.roll_rates if r["as_of_date"] == dates[-1]} <= {"curo", "salio"}
    con = duckdb.connect(str(copy), read_only=True)
    try:
        assert data.roll_pairs_joined == 0 and recomputed.report_outcomes(data) == recomputed.expected_outcomes(con)
    finally:
        con.close()
