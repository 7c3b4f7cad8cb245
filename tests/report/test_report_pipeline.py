"""A generated date through the real pipeline (`cartera generate` + `cartera run`): its report
states what the real serving file holds, and shows the quality checks Dagster recorded."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.report.data import load_report_data

from . import expected as recomputed
from .pagedata import Page

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def cartera(*args: str, env: dict) -> str:
    result = subprocess.run([sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"cartera {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    # some bad rows, and a threshold that lets the small payment files through with them
    env = {**os.environ, "CARTERA_PII_KEY": "report-test-key", "DAGSTER_HOME": str(tmp / "dagster_home"),
           "PYTHONPATH": str(ROOT), "CARTERA_QUARANTINE_THRESHOLD": "0.25"}
    (tmp / "dagster_home").mkdir()
    landing, warehouse = tmp / "landing", tmp / "warehouse"
    cartera("generate", "--out", str(landing), "--loans", "400", "--days", "3", "--start", "2026-03-02",
            "--seed", "5", "--bad-rows", "0.01", env=env)
    days = sorted(p.name for p in landing.iterdir() if p.is_dir())
    # one ranged run (the onboarding path): the per-date check figures come from by_date
    cartera("run", "--landing", str(landing), "--warehouse", str(warehouse), "--from", days[0], "--to", days[-1],
            "--bulk", env=env)
    return warehouse, days


def test_every_published_date_has_a_report(pipeline):
    warehouse, days = pipeline
    reports = sorted(p.name for p in (warehouse / "reports").glob("report_*.html"))
    assert reports == [f"report_{d}.html" for d in days]


def test_report_figures_equal_the_real_serving_file(pipeline):
    warehouse, days = pipeline
    day = days[-1]
    page = Page(warehouse / "reports" / f"report_{day}.html")
    con = duckdb.connect(str(warehouse / "serving.duckdb"), read_only=True)
    try:
        (loans, balance, par30, par90, provision), = con.execute(
            """SELECT count(*), sum(balance_pen),
                      sum(CASE WHEN dpd > 30 THEN balance_pen ELSE 0 END) / sum(balance_pen),
                      sum(CASE WHEN dpd > 90 THEN balance_pen ELSE 0 END) / sum(balance_pen),
                      sum(provision_pen)
               FROM segment_assignments WHERE as_of_date = ?""", [day]).fetchall()
        segments = con.execute("SELECT segment_code, sum(balance_pen) FROM segment_assignments "
                               "WHERE as_of_date = ? GROUP BY 1", [day]).fetchall()
        migration = con.execute("SELECT sum(loans) FROM segment_migration WHERE as_of_date = ?", [day]).fetchone()[0]
        (read, quarantined), = con.execute(
            "SELECT rows_read, rows_quarantined FROM run_audit WHERE as_of_date = ? AND outcome = 'published' "
            "ORDER BY ended_at DESC LIMIT 1", [day]).fetchall()
    finally:
        con.close()

    assert int(page.kpi("loans")) == loans > 300
    assert Decimal(page.kpi("balance")) == balance
    assert Decimal(page.kpi("provision")) == provision
    assert float(page.kpi("par30")) == pytest.approx(float(par30), rel=1e-12)
    assert float(page.kpi("par90")) == pytest.approx(float(par90), rel=1e-12)
    rows = page.rows("data-segment")
    assert {k: Decimal(v["data-balance"]) for k, v in rows.items()} == dict(segments)
    heat = page.specs["segment-migration"]["data"][0]
    assert sum(int(c[0].replace(",", "")) for row in heat["customdata"] for c in row) == migration

    quality = page.rows("data-quality")
    assert int(quality["rows-read"]["data-value"]) == read
    assert int(quality["rows-quarantined"]["data-value"]) == quarantined > 0
    assert page.text.count("<code>") and "Ninguna fila fue puesta en cuarentena" not in page.text
    assert "Cuarentena del almacén = filas en cuarentena de run_audit" in page.text
    # the ingest asset checks Dagster recorded for the publishing run are listed, all passed
    assert "Dagster (asset check)" in page.text
    assert "loans_rules" in page.text
    checks = page.with_attr("data-check-passed")
    assert checks and all(c["data-check-passed"] == "true" for c in checks)


def test_roll_rates_come_from_the_published_mart(pipeline):
    """The real dbt model bucket_roll_rates, as published: its rows equal the bucket flows
    recomputed with LAG/LEAD from segment_assignments, and the report reads its roll rates
    from it (no join at render time) with the same figures as the recomputation."""
    warehouse, days = pipeline
    serving = warehouse / "serving.duckdb"
    con = duckdb.connect(str(serving), read_only=True)
    try:
        table = {(d, f, t): (p, n, pb, b) for d, p, f, t, n, pb, b in con.execute(
            "SELECT as_of_date, previous_date, from_bucket, to_bucket, loans, previous_balance_pen, balance_pen "
            "FROM bucket_roll_rates").fetchall()}
        flows = recomputed.flows(con)
        expected = recomputed.expected_outcomes(con)
        bounds = dict(con.execute("SELECT to_bucket, to_bucket_min_dpd FROM bucket_roll_rates "
                                  "WHERE to_bucket <> 'SALIDA'").fetchall())
        observed = dict(con.execute("SELECT dpd_bucket, min(dpd) FROM segment_assignments GROUP BY 1").fetchall())
    finally:
        con.close()
    assert table == flows and {d for d, _, _ in table} == {dt.date.fromisoformat(d) for d in days}
    assert all(bounds[b] <= observed[b] for b in observed)  # the seed's lower bounds
    data = load_report_data(serving, days[-1])
    assert data.roll_pairs_joined == 0
    assert recomputed.report_outcomes(data) == expected
    page = Page(warehouse / "reports" / f"report_{days[-1]}.html")
    assert "roll-rates" in page.specs and "roll-matrix" in page.specs
