"""run_audit: contents for published and failed runs, and `cartera audit --date D` text."""

from __future__ import annotations

import json
import subprocess

import duckdb
import pytest
from dagster import materialize

import orchestration
from publish_factory import DATES, PII_KEY, RULEBOOK_VERSION
from orchestration.publish.assets import publish_range, serving_warehouse
from orchestration.publish.audit import AuditNotFound, format_audit, record_failed_run


def _audit(path, where="true", params=()):
    con = duckdb.connect(str(path), read_only=True)
    table = "audit.run_audit" if path.name == "cartera.duckdb" else "run_audit"
    cur = con.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY as_of_date, started_at, run_id", list(params))
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    return rows


def test_published_run_audit_rows_carry_inputs_counts_versions_and_times(cartera, pii_key):
    res = materialize(
        [serving_warehouse], resources={"cartera": cartera},
        tags={"dagster/asset_partition_range_start": DATES[0].isoformat(),
              "dagster/asset_partition_range_end": DATES[-1].isoformat()},
    )
    rows = _audit(cartera.serving_db)
    assert rows == _audit(cartera.warehouse_db)  # serving holds the warehouse record
    assert [r["as_of_date"] for r in rows] == DATES

    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=orchestration.__path__[0],
                          capture_output=True, text=True)
    for r in rows:
        files = wh.execute(
            "SELECT file_name, sha256, rows_read, rows_quarantined, rows_landed FROM raw.ingest_files "
            "WHERE as_of_date = ? ORDER BY file_name", [r["as_of_date"]]).fetchall()
        assert [tuple(f.values()) for f in json.loads(r["input_files"])] == files
        assert r["rows_read"] == sum(f[2] for f in files)
        assert r["rows_quarantined"] == sum(f[3] for f in files) > 0
        assert r["rows_published"] == wh.execute(
            "SELECT count(*) FROM marts.segment_assignments WHERE as_of_date = ?", [r["as_of_date"]]).fetchone()[0]
        assert r["rulebook_version"] == RULEBOOK_VERSION
        # <version>+g<commit> (the commit checked out when the code was loaded), or <version>.
        version, _, commit = r["code_version"].partition("+g")
        assert version == orchestration.__version__
        if head.returncode == 0:
            assert subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"],
                                  cwd=orchestration.__path__[0]).returncode == 0
        assert r["run_id"] == res.run_id
        assert r["started_at"] <= r["ended_at"]
        assert r["outcome"] == "published"


def test_a_failed_run_is_recorded_without_touching_the_bi_tables(cartera, pii_key):
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "good-run")
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    before = {t: srv.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
              for t in ("segment_assignments", "segment_summary", "segment_migration")}
    srv.close()

    reason = f"dbt model int_loan_features failed:\n  line 3, column dpd: expected an integer (key {PII_KEY})"
    record_failed_run(cartera, f"ingest-{DATES[1]}", DATES[1], "transform", reason)
    # A rejected drop lands no files but quarantined lines (one row per line and rule).
    wh = duckdb.connect(str(cartera.warehouse_db))
    wh.execute("INSERT INTO raw.quarantine VALUES (?, 'run-without-ingest', 'loans.csv', 5, 'r1', 'dpd', '{}'), "
               "(?, 'run-without-ingest', 'loans.csv', 5, 'r2', 'currency', '{}'), "
               "(?, 'run-without-ingest', 'payments.csv', 9, 'r1', 'amount', '{}')", [DATES[1]] * 3)
    wh.close()
    record_failed_run(cartera, "run-without-ingest", DATES[1].isoformat(), "ingest", "loans.csv: missing column dpd")

    wh_rows = _audit(cartera.warehouse_db, "as_of_date = ?", [DATES[1]])
    assert _audit(cartera.serving_db, "as_of_date = ?", [DATES[1]]) == wh_rows
    failed, no_ingest = wh_rows if wh_rows[0]["run_id"].startswith("ingest") else wh_rows[::-1]
    assert failed["outcome"] == ("failed: transform: dbt model int_loan_features failed: line 3, column dpd: "
                                 "expected an integer (key <redacted>)")
    assert [f["file_name"] for f in json.loads(failed["input_files"])] == [
        "_control.csv", "customers.csv", "fx_rates.csv", "loans.csv", "payments.csv"]
    assert failed["rows_published"] == 0 and failed["rulebook_version"] is None
    assert no_ingest["input_files"] == "[]" and no_ingest["rows_read"] is None
    assert no_ingest["rows_quarantined"] == 2
    assert no_ingest["outcome"] == "failed: ingest: loans.csv: missing column dpd"

    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    after = {t: srv.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in before}
    assert after == before
    pq = cartera.warehouse_path / "parquet" / "run_audit" / f"as_of_date={DATES[1]}" / "part-0.parquet"
    assert sorted(r[0] for r in srv.execute(f"SELECT outcome FROM read_parquet('{pq}')").fetchall()) == \
        sorted(r["outcome"] for r in wh_rows)

    text = format_audit(cartera, DATES[1])
    assert "failed: transform: dbt model int_loan_features failed" in text
    assert "run run-without-ingest" in text and PII_KEY not in text


def test_a_failure_before_anything_was_published_creates_the_audit(cartera, pii_key):
    record_failed_run(cartera, "first-ever", DATES[0], "quality", "loans.csv: 3% of rows quarantined (limit 1%)")
    text = format_audit(cartera, DATES[0].isoformat())
    assert "first-ever" in text and "failed: quality: loans.csv: 3% of rows quarantined" in text
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert srv.execute("SELECT count(*) FROM segment_assignments").fetchone()[0] == 0


def test_format_audit_lists_runs_and_input_files(cartera, pii_key):
    with pytest.raises(AuditNotFound, match="nothing has been published yet"):
        format_audit(cartera, DATES[0])
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "r1")
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "r2")
    text = format_audit(cartera, DATES[0])
    lines = text.splitlines()
    assert lines[0].startswith(f"run_audit for {DATES[0]} (2 runs; source ")
    assert text.index("run r1") < text.index("run r2")
    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    for name, sha in wh.execute("SELECT file_name, sha256 FROM raw.ingest_files WHERE as_of_date = ?",
                                [DATES[0]]).fetchall():
        assert sum(1 for line in lines if name in line and sha in line) == 2
    assert f"rulebook version  {RULEBOOK_VERSION}" in text
    with pytest.raises(AuditNotFound, match="no run_audit row for 2026-03-04"):
        format_audit(cartera, DATES[2])
