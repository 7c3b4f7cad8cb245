"""serving.duckdb and Parquet: content, customer_key, re-runs, storage version, Dagster asset."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import duckdb
import pytest
from dagster import AssetKey, materialize

from publish_factory import DATES, rederive
from orchestration.publish.assets import publish_range, serving_warehouse
from orchestration.publish.serving import SERVING_STORAGE_VERSION

MARTS = ["segment_assignments", "segment_summary", "segment_migration"]


def _rows(con, sql, params=()):
    return sorted(con.execute(sql, list(params)).fetchall(), key=repr)


def _publish(cartera, first, last=None, run_id=None):
    last = last or first
    return publish_range(cartera, first.isoformat(), last.isoformat(), run_id or f"run-{first}-{last}")


def test_serving_holds_the_marts_with_customer_key_instead_of_customer_id(cartera, pii_key):
    result = _publish(cartera, DATES[0], DATES[-1])
    assert result.dates == [d.isoformat() for d in DATES]

    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    # Every mart row is published, customer_id replaced by Python's HMAC of it.
    mart_cols = [r[0] for r in wh.execute("DESCRIBE marts.segment_assignments").fetchall()]
    expected = []
    for row in wh.execute("SELECT * FROM marts.segment_assignments").fetchall():
        rec = dict(zip(mart_cols, row))
        rec["customer_key"] = hmac.new(pii_key, rec.pop("customer_id").encode(), hashlib.sha256).hexdigest()
        expected.append(rec)
    srv_cols = [r[0] for r in srv.execute("DESCRIBE segment_assignments").fetchall()]
    assert "customer_id" not in srv_cols and srv_cols[2] == "customer_key"
    got = [dict(zip(srv_cols, r)) for r in srv.execute("SELECT * FROM segment_assignments").fetchall()]
    key = lambda r: (r["as_of_date"], r["loan_id"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)

    for table in MARTS[1:]:
        assert _rows(srv, f"SELECT * FROM {table}") == _rows(wh, f"SELECT * FROM marts.{table}")
    # One published audit row per date.
    audit = srv.execute("SELECT as_of_date, outcome, rows_published FROM run_audit ORDER BY 1").fetchall()
    counts = dict(wh.execute("SELECT as_of_date, count(*) FROM marts.segment_assignments GROUP BY 1").fetchall())
    assert audit == [(d, "published", counts[d]) for d in DATES]
    # Rows of a date are stored sorted (zone maps prune by date and segment).
    seq = srv.execute("SELECT as_of_date, segment_code, loan_id FROM segment_assignments").fetchall()
    assert seq == sorted(seq)


def test_parquet_export_matches_serving_per_date(cartera, pii_key):
    _publish(cartera, DATES[0], DATES[-1])
    root = cartera.warehouse_path / "parquet"
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    for table in [*MARTS, "run_audit"]:
        files = sorted((root / table).glob("as_of_date=*/part-0.parquet"))
        assert [f.parent.name for f in files] == [f"as_of_date={d}" for d in DATES]
        pq = _rows(srv, f"SELECT * FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning=true)")
        cols = [c[0] for c in srv.execute(f"DESCRIBE {table}").fetchall()]
        pq_cols = [c[0] for c in srv.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning=true)").fetchall()]
        ordered = ", ".join(f'"{c}"' for c in cols)
        assert sorted(pq_cols) == sorted(cols)
        pq = _rows(srv, f"SELECT {ordered} FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning=true)")
        assert pq == _rows(srv, f"SELECT * FROM {table}")
    # No temp files are left in the export tree.
    assert not [p for p in root.rglob("*") if p.is_file() and p.name != "part-0.parquet"]


def test_republishing_a_date_replaces_it(cartera, pii_key):
    _publish(cartera, DATES[0], DATES[-1])
    # The marts change for the middle date (e.g. a corrected extract re-run).
    wh = duckdb.connect(str(cartera.warehouse_db))
    wh.execute("DELETE FROM marts.segment_assignments WHERE as_of_date = ? AND dpd = 0", [DATES[1]])
    wh.execute("UPDATE marts.segment_assignments SET reason = reason || ' (corregido)' WHERE as_of_date = ?",
               [DATES[1]])
    wh.close()
    rederive(cartera.warehouse_db)
    # History order: re-running a date re-runs the later ones too (their migration changed).
    _publish(cartera, DATES[1], DATES[2], run_id="rerun")
    _publish(cartera, DATES[1], DATES[2], run_id="rerun-again")

    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    for table in MARTS:
        per_date = dict(srv.execute(f"SELECT as_of_date, count(*) FROM {table} GROUP BY 1").fetchall())
        assert per_date == dict(wh.execute(f"SELECT as_of_date, count(*) FROM marts.{table} GROUP BY 1").fetchall())
    assert srv.execute("SELECT count(*) FROM segment_assignments WHERE as_of_date = ? AND dpd = 0",
                       [DATES[1]]).fetchone()[0] == 0
    assert srv.execute("SELECT bool_and(reason LIKE '%(corregido)') FROM segment_assignments WHERE as_of_date = ?",
                       [DATES[1]]).fetchone()[0]
    # run_audit keeps every run (it is a log): 3 dates from the first run + 2 x 2 re-run dates.
    assert srv.execute("SELECT count(*), count(DISTINCT run_id) FROM run_audit").fetchone() == (7, 3)


def test_dates_without_assignments_are_skipped(cartera, pii_key):
    saturday = DATES[0] - dt.timedelta(days=2)
    result = _publish(cartera, saturday, DATES[0])
    assert result.dates == [DATES[0].isoformat()]
    assert result.skipped == [saturday.isoformat(), (saturday + dt.timedelta(days=1)).isoformat()]
    nothing = _publish(cartera, saturday)
    assert nothing.dates == [] and not (cartera.warehouse_path / "parquet" / "run_audit" /
                                        f"as_of_date={saturday}").exists()


def test_serving_file_is_readable_by_duckdb_1x(cartera, pii_key):
    """The header's storage number must be one DuckDB 1.x reads (64..68); 2.0's default is not."""
    _publish(cartera, DATES[0])
    header = cartera.serving_db.read_bytes()[:16]
    assert header[8:12] == b"DUCK"
    storage_number = int.from_bytes(header[12:20].ljust(8, b"\0"), "little")
    assert storage_number == 64  # v1.0.0: readable by DuckDB >= 1.0 (1.5 reads 64..68)
    con = duckdb.connect()
    con.execute(f"ATTACH '{cartera.serving_db}' AS s (READ_ONLY)")
    tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 's'").fetchone()[0]
    assert tags["storage_version"] == f"{SERVING_STORAGE_VERSION}+"


def test_a_serving_file_in_a_newer_format_is_rebuilt_in_the_chosen_one(cartera, pii_key):
    _publish(cartera, DATES[0])
    # Someone replaced the serving file with one in DuckDB 2.0's default format.
    newer = cartera.warehouse_path / "newer.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{cartera.serving_db}' AS old (READ_ONLY)")
    con.execute(f"ATTACH '{newer}' AS new")
    con.execute("COPY FROM DATABASE old TO new")
    con.execute("DETACH new")
    con.close()
    newer.replace(cartera.serving_db)
    assert cartera.serving_db.read_bytes()[12] != 64

    result = _publish(cartera, DATES[1])
    assert result.serving_method.startswith("rebuilt") and result.storage_version == "v1.0.0+"
    assert cartera.serving_db.read_bytes()[12] == 64
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert [r[0] for r in srv.execute("SELECT DISTINCT as_of_date FROM segment_assignments ORDER BY 1").fetchall()] \
        == DATES[:2]


def test_latest_views(cartera, pii_key):
    _publish(cartera, DATES[0], DATES[1])
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert srv.execute("SELECT DISTINCT as_of_date FROM latest_segment_assignments").fetchall() == [(DATES[1],)]
    assert srv.execute("SELECT sum(loans) FROM latest_segment_summary").fetchone()[0] == \
        srv.execute("SELECT count(*) FROM segment_assignments WHERE as_of_date = ?", [DATES[1]]).fetchone()[0]


def test_the_dagster_asset_publishes_the_partition_range_with_metadata(cartera, pii_key):
    assert {k.path[-1] for k in serving_warehouse.dependency_keys} >= {
        "segment_assignments", "segment_summary", "segment_migration", "daily_actions"}
    assert serving_warehouse.group_names_by_key[AssetKey("serving_warehouse")] == "publish"
    res = materialize(
        [serving_warehouse],
        resources={"cartera": cartera},
        tags={"dagster/asset_partition_range_start": DATES[0].isoformat(),
              "dagster/asset_partition_range_end": DATES[1].isoformat()},
    )
    assert res.success
    mat = res.asset_materializations_for_node("serving_warehouse")[0]
    meta = {k: v.value for k, v in mat.metadata.items()}
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert meta["dates_published"] == [d.isoformat() for d in DATES[:2]]
    assert meta["rows_segment_assignments"] == srv.execute("SELECT count(*) FROM segment_assignments").fetchone()[0]
    assert meta["rows_segment_summary"] == srv.execute("SELECT count(*) FROM segment_summary").fetchone()[0]
    assert meta["serving_path"] == str(cartera.serving_db)
    assert meta["serving_size_bytes"] == cartera.serving_db.stat().st_size
    assert meta["storage_version"] == "v1.0.0+"
    run_ids = {r[0] for r in srv.execute("SELECT DISTINCT run_id FROM run_audit").fetchall()}
    assert run_ids == {res.run_id}
    started = srv.execute("SELECT min(started_at), max(ended_at) FROM run_audit").fetchone()
    assert started[0] <= started[1]


def test_missing_marts_fail_with_a_clear_message(tmp_path, pii_key):
    from dagster import Failure

    from orchestration.config import CarteraResource

    cartera = CarteraResource(landing_dir=str(tmp_path), warehouse_dir=str(tmp_path / "wh"))
    with pytest.raises(Exception) as err:
        materialize([serving_warehouse], resources={"cartera": cartera}, partition_key=DATES[0].isoformat())
    assert "marts.segment_assignments does not exist" in str(err.value)
    assert isinstance(err.value, Failure) or "Failure" in repr(err.value)
