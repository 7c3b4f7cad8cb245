"""Personal data: never in BI outputs, key never leaked, worklist restricted and defused."""

from __future__ import annotations

import csv
import hashlib
import hmac
import stat

import duckdb
import pytest
from dagster import materialize

from publish_factory import DATES, FORMULA_NAMES
from orchestration.config import DEMO_PII_KEY, CarteraResource
from orchestration.publish.assets import publish_range, serving_warehouse
from orchestration.publish.pii import customer_key, customer_key_sql, hmac_pads

PII_COLUMNS = ["customer_id", "document_number", "full_name", "phone", "email"]


def _pii_values(cartera) -> list[str]:
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    values = set()
    for col in PII_COLUMNS:
        values |= {r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM raw.customers WHERE {col} IS NOT NULL").fetchall()}
    con.close()
    assert len(values) > 1000
    return sorted(values)


def _leaks(con, relation: str, pii: list[str]) -> list[tuple]:
    """(column, value, pii) for every cell of ``relation`` that contains a PII value."""
    con.execute("CREATE OR REPLACE TEMP TABLE pii AS SELECT unnest(?::VARCHAR[]) AS v", [pii])
    cols = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {relation})").fetchall()]
    # Every distinct (column, cell as text) once, then a substring match against every value.
    cells = " UNION ".join(f"SELECT '{c}' AS col, CAST(\"{c}\" AS VARCHAR) AS cell FROM {relation}" for c in cols)
    return con.execute(
        f"SELECT c.col, c.cell, pii.v FROM ({cells}) c JOIN pii ON contains(c.cell, pii.v) LIMIT 20"
    ).fetchall()


def test_no_bi_table_nor_parquet_file_holds_personal_data(cartera, pii_key):
    publish_range(cartera, DATES[0].isoformat(), DATES[-1].isoformat(), "pii-scan")
    pii = _pii_values(cartera)
    con = duckdb.connect()
    # The scanner finds PII where it is expected (restricted mart), so silence below means something.
    con.execute(f"ATTACH '{cartera.warehouse_db}' AS wh (READ_ONLY)")
    assert _leaks(con, "wh.restricted.daily_actions", pii)
    assert _leaks(con, "wh.marts.segment_assignments", pii)

    con.execute(f"ATTACH '{cartera.serving_db}' AS srv (READ_ONLY)")
    relations = [f"srv.{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'srv' UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'srv' AND NOT internal"
    ).fetchall()]
    assert {f"srv.main.{t}" for t in ("segment_assignments", "segment_summary", "segment_migration",
                                       "run_audit")} <= set(relations)
    for relation in relations:  # every table and view, whatever its schema
        assert _leaks(con, relation, pii) == [], relation

    files = sorted((cartera.warehouse_path / "parquet").rglob("*.parquet"))
    assert len(files) == 4 * len(DATES)
    for path in files:
        assert _leaks(con, f"read_parquet('{path}')", pii) == [], path


def test_customer_key_in_duckdb_equals_python_hmac():
    key = "clave-secreta-ñandú-" * 5  # longer than a SHA-256 block: hashed first, as RFC 2104 says
    ids = ["CUS000001", "", "Ñ-123", "x" * 200, "20123456789"]
    con = duckdb.connect()
    for k in (key, "k", "a" * 64):
        rows = con.execute(
            f"SELECT c, {customer_key_sql('c')} FROM (SELECT unnest($ids::VARCHAR[]) AS c)",
            {**hmac_pads(k.encode()).params(), "ids": ids},
        ).fetchall()
        assert rows == [(c, hmac.new(k.encode(), c.encode(), hashlib.sha256).hexdigest()) for c in ids]


def test_the_key_never_reaches_logs_metadata_errors_or_files(cartera, monkeypatch):
    secret = "zz-very-distinctive-secret-Q7x9"
    monkeypatch.setenv("CARTERA_PII_KEY", secret)
    res = materialize([serving_warehouse], resources={"cartera": cartera}, partition_key=DATES[0].isoformat())
    events = "\n".join(repr(e) for e in res.all_events)
    pads = hmac_pads(secret.encode())
    needles = [secret, secret.encode().hex(), pads.inner.hex(), pads.outer.hex()]
    assert not [n for n in needles if n in events]
    # ...nor any byte of the outputs.
    outputs = [cartera.serving_db, cartera.warehouse_db, *cartera.warehouse_path.rglob("*.parquet"),
               *cartera.warehouse_path.rglob("*.csv")]
    for path in outputs:
        blob = path.read_bytes()
        assert not [n for n in (secret.encode(), pads.inner, pads.outer) if n in blob], path
    # customer_key is the HMAC under this key.
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    loan, key = srv.execute("SELECT loan_id, customer_key FROM segment_assignments LIMIT 1").fetchone()
    cid = wh.execute("SELECT customer_id FROM marts.segment_assignments WHERE loan_id = ?", [loan]).fetchone()[0]
    assert key == customer_key(secret.encode(), cid)
    # A failure message does not carry the key either.
    bad = CarteraResource(landing_dir=cartera.landing_dir, warehouse_dir=str(cartera.warehouse_path / "empty"))
    failed = materialize([serving_warehouse], resources={"cartera": bad}, partition_key=DATES[0].isoformat(),
                         raise_on_error=False)
    assert not failed.success
    assert secret not in "\n".join(repr(e) for e in failed.all_events)


def test_a_missing_key_stops_the_publish_with_a_message_naming_the_variable(cartera, monkeypatch):
    monkeypatch.delenv("CARTERA_PII_KEY", raising=False)
    res = materialize([serving_warehouse], resources={"cartera": cartera}, partition_key=DATES[0].isoformat(),
                      raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "CARTERA_PII_KEY is not set" in failure.event_specific_data.error.message
    assert not cartera.serving_db.exists()

    demo = CarteraResource(landing_dir=cartera.landing_dir, warehouse_dir=cartera.warehouse_dir, demo_mode=True)
    publish_range(demo, DATES[0].isoformat(), DATES[0].isoformat(), "demo")
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    loan, key = srv.execute("SELECT loan_id, customer_key FROM segment_assignments LIMIT 1").fetchone()
    cid = wh.execute("SELECT customer_id FROM marts.segment_assignments WHERE loan_id = ?", [loan]).fetchone()[0]
    assert key == customer_key(DEMO_PII_KEY.encode(), cid)


def test_a_mart_with_a_personal_data_column_is_refused(cartera, pii_key):
    from orchestration.publish.serving import PublishError

    con = duckdb.connect(str(cartera.warehouse_db))
    con.execute("ALTER TABLE marts.segment_assignments ADD COLUMN phone VARCHAR")
    con.close()
    with pytest.raises(PublishError, match="personal-data column.*phone"):
        publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "leaky")
    assert not cartera.serving_db.exists()


def test_worklist_csv_is_owner_only_ordered_and_formula_safe(cartera, pii_key):
    restricted = cartera.warehouse_path / "restricted"
    restricted.mkdir(mode=0o755)
    stale = restricted / f"worklist_{DATES[0]}.csv"
    stale.write_text("old")
    stale.chmod(0o644)
    result = publish_range(cartera, DATES[0].isoformat(), DATES[-1].isoformat(), "worklist")

    assert stat.S_IMODE(restricted.stat().st_mode) == 0o700
    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    neutralised = 0
    for day in DATES:
        path = restricted / f"worklist_{day}.csv"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        cur = wh.execute("SELECT * FROM restricted.daily_actions WHERE as_of_date = ? ORDER BY priority", [day])
        header = [d[0] for d in cur.description]
        expected = cur.fetchall()
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == header
        assert len(rows) - 1 == len(expected) == result.worklists[day.isoformat()]
        assert [int(r[1]) for r in rows[1:]] == list(range(1, len(expected) + 1))
        for got, want in zip(rows[1:], expected):
            for cell, value in zip(got, want):
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
                text = "" if value is None else str(value)
                if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    assert cell == "'" + text
                    neutralised += 1
                else:
                    assert cell == text
    assert neutralised > 10  # phones like +51 ... and the formula-like names were exercised
    names = {r[0] for r in wh.execute("SELECT full_name FROM restricted.daily_actions").fetchall()}
    assert names & set(FORMULA_NAMES)
