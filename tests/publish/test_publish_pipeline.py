"""End to end: generated extracts through the real job (ingest, checks, dbt, publish).

`cartera run` drives the same Dagster job the schedule launches; this checks what publish
made of it, with PostgreSQL configured: the serving file, Parquet, PostgreSQL and the
worklist agree with the marts, and no value of the input's customers.csv reaches a BI
output.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg
import pytest

from orchestration.publish.pii import customer_key

PROJECT = Path(__file__).resolve().parents[2]
KEY = "pipeline-test-key-5f0c2a"
START = dt.date(2026, 3, 2)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _customers_pii(landing: Path) -> set[str]:
    values: set[str] = set()
    for path in landing.glob("*/customers.csv*"):
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
        try:  # the generator writes UTF-8 or Latin-1, like the cores it imitates
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        dialect = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
        for row in csv.DictReader(text.splitlines(), delimiter=dialect):
            for col in ("customer_id", "document_number", "full_name", "phone", "email"):
                if row.get(col):
                    values.add(row[col])
    return values


def test_the_real_pipeline_publishes_consistent_pii_free_outputs(tmp_path, pg_database):
    from orchestration.simulate import generate_landing

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    dates = generate_landing(landing, loans=200, days=2, start=START, seed=11)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTERA_", "DAGSTER_HOME"))}
    env.update(DAGSTER_HOME=str(tmp_path / "dagster_home"), CARTERA_PII_KEY=KEY,
               CARTERA_POSTGRES_DSN=pg_database, PYTHONIOENCODING="utf-8")
    (tmp_path / "dagster_home").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--landing", str(landing), "--warehouse",
         str(warehouse), "--from", dates[0].isoformat(), "--to", dates[-1].isoformat()],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]

    wh = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)
    srv = duckdb.connect(str(warehouse / "serving.duckdb"), read_only=True)
    # Serving == marts with customer_key = HMAC(customer_id).
    mart = {(d, loan): customer_key(KEY.encode(), cid) for d, loan, cid in wh.execute(
        "SELECT as_of_date, loan_id, customer_id FROM marts.segment_assignments").fetchall()}
    served = {(d, loan): key for d, loan, key in srv.execute(
        "SELECT as_of_date, loan_id, customer_key FROM segment_assignments").fetchall()}
    assert served == mart and {d for d, _ in served} == set(dates)
    assert [r[0] for r in srv.execute("SELECT outcome FROM run_audit ORDER BY as_of_date").fetchall()] \
        == ["published"] * len(dates)

    # PostgreSQL holds the same rows.
    with psycopg.connect(pg_database) as pg:
        for table in ("segment_assignments", "segment_summary", "segment_migration", "run_audit"):
            cols = ", ".join(r[0] for r in srv.execute(f"DESCRIBE {table}").fetchall())
            assert sorted(pg.execute(f"SELECT {cols} FROM cartera.{table}").fetchall(), key=repr) == \
                sorted(srv.execute(f"SELECT {cols} FROM {table}").fetchall(), key=repr), table
        assert pg.execute("SELECT count(*) FROM cartera_ops.daily_actions").fetchone()[0] == \
            wh.execute("SELECT count(*) FROM restricted.daily_actions").fetchone()[0]

    # No input PII in any BI table/view or Parquet file.
    pii = sorted(_customers_pii(landing))
    assert len(pii) > 100
    con = duckdb.connect()
    con.execute("CREATE TABLE pii AS SELECT unnest(?::VARCHAR[]) AS v", [pii])
    con.execute(f"ATTACH '{warehouse / 'serving.duckdb'}' AS srv (READ_ONLY)")
    relations = [f"srv.{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'srv' UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'srv' AND NOT internal"
    ).fetchall()]
    relations += [f"read_parquet('{p}')" for p in (warehouse / "parquet").rglob("*.parquet")]
    for relation in relations:
        cols = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {relation})").fetchall()]
        cells = " UNION ".join(f"SELECT CAST(\"{c}\" AS VARCHAR) AS cell FROM {relation}" for c in cols)
        assert con.execute(f"SELECT c.cell, pii.v FROM ({cells}) c JOIN pii ON contains(c.cell, pii.v) "
                           "LIMIT 5").fetchall() == [], relation

    # The worklists exist, owner-only.
    for day in dates:
        path = warehouse / "restricted" / f"worklist_{day.isoformat()}.csv"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
