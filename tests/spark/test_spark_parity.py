"""The dbt models give the same marts on Apache Spark (dbt-spark, local session) as on DuckDB.

One generated portfolio (a few hundred loans, four business dates) is ingested once by the
real ingest assets; then the same dbt project is built the same way on both: the first date
alone (tables created), the other three as one range (the incremental path: self-reads of
the history models, partition replacement) and the last date once more (a re-run replaces
the date's rows). The Spark side reads the raw Parquet
hand-off (orchestration/transform/spark.py) and writes Parquet marts.

Both sides are compared row for row and column by column, every cell as (Python type, text),
so 15.5 and 15.50, or a float and a DECIMAL, are different values; column types are
compared too. No tolerance: money is exact on both adapters.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest



def skip_or_fail(reason: str):
    """Skip on a developer machine without Spark; in CI (CARTERA_REQUIRE_SERVICES=1) fail."""
    if os.environ.get("CARTERA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CARTERA_REQUIRE_SERVICES=1: a missing service is a failure)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import dbt.adapters.spark  # noqa: F401
    import pyspark  # noqa: F401
except ImportError:
    skip_or_fail("Spark extra not installed: pip install -e '.[spark]'")

import pyarrow.parquet as pq  # noqa: E402

from orchestration.config import DBT_PROJECT_DIR, CarteraResource  # noqa: E402
from orchestration.transform import spark  # noqa: E402
from orchestration.transform.rulebook import compile_rulebook  # noqa: E402

pytestmark = pytest.mark.slow

COMPARED = ("segment_assignments", "segment_summary", "segment_migration")
KEYS = {"segment_assignments": ("as_of_date", "loan_id"),
        "segment_summary": ("as_of_date", "segment_code", "strategy_code"),
        "segment_migration": ("as_of_date", "from_segment", "to_segment"),
        "daily_actions": ("as_of_date", "priority"),
        "bucket_roll_rates": ("as_of_date", "from_bucket", "to_bucket")}
SCHEMA = {"daily_actions": "restricted"}
# DuckDB type name -> the Arrow type Spark's Parquet must carry for the same column
ARROW_OF = {"VARCHAR": "string", "DATE": "date32[day]", "INTEGER": "int32", "BOOLEAN": "bool"}


def java_available() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


def run_dbt(env: dict, tmp: Path, ranges: list[tuple[str, str]]) -> float:
    """`dbt build` of seeds and models for each range, in one process (dbt_ranges.py: one JVM
    on Spark). Data and unit tests are excluded: this test is about parity; tests/transform
    runs them on DuckDB. Returns wall seconds."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("dbt_ranges.py")), str(DBT_PROJECT_DIR), str(tmp / "target"),
         ",".join(spark.SPARK_EXCLUDED_MODELS), *(f"{start}:{end}" for start, end in ranges)],
        cwd=DBT_PROJECT_DIR, env={**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"},
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, f"dbt on {env.get('CARTERA_DBT_TARGET')}:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    print([line for line in done.stdout.splitlines() if line.startswith(("range ", "cpu "))])
    return time.perf_counter() - began


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not java_available():
        skip_or_fail("no Java runtime: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)")
    from orchestration.simulate import generate_landing

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
    from ingest_harness import run as ingest

    tmp = tmp_path_factory.mktemp("spark_parity")
    dates = [d.isoformat() for d in generate_landing(tmp / "landing", loans=300, days=4,
                                                      start=dt.date(2026, 1, 5), seed=11)]
    cartera = CarteraResource(landing_dir=str(tmp / "landing"), warehouse_dir=str(tmp / "warehouse"))
    result = ingest(cartera, dates[0], dates[-1])
    assert result.success
    compile_rulebook()

    # DuckDB: its own copy of the ingested warehouse
    duck_db = tmp / "duckdb" / "cartera.duckdb"
    duck_db.parent.mkdir()
    shutil.copy(cartera.warehouse_db, duck_db)
    duck_env = {**{k: v for k, v in os.environ.items() if not k.startswith("CARTERA_")},
                "CARTERA_DBT_TARGET": "duckdb", "CARTERA_DUCKDB_PATH": str(duck_db)}

    # Spark: the raw hand-off, then a local session whose metastore and warehouse live in tmp
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    try:
        exported = spark.export_raw(con, dates, tmp / "warehouse" / "spark" / "raw")
    finally:
        con.close()
    # every Spark folder under tmp, whatever CARTERA_SPARK_* the developer's shell has
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARTERA_")}
    spark_env = spark.dbt_env(cartera.warehouse_path, base=clean)
    spark_env.update({key: str(tmp / "warehouse" / "spark" / sub) for key, sub in (
        ("CARTERA_SPARK_DIR", ""), ("CARTERA_SPARK_RAW_DIR", "raw"), ("CARTERA_SPARK_WAREHOUSE_DIR", "warehouse"))})
    spark_env["CARTERA_SPARK_SHUFFLE_PARTITIONS"] = "1"  # a few hundred rows per table
    # many short queries: a JVM that compiles less (C1 only) and one GC thread cost less CPU
    spark_env["CARTERA_SPARK_JAVA_OPTIONS"] = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

    seconds = {}
    for name, env in (("duckdb", duck_env), ("spark", spark_env)):
        # the first date alone (tables created), the rest as one range (incremental path),
        # then the last date again (a re-run replaces its rows: no duplicates, same values)
        seconds[name] = run_dbt(env, tmp / name, [(dates[0], dates[0]), (dates[1], dates[-1]), (dates[-1], dates[-1])])
    print(f"dbt wall seconds (4 dates, 3 builds): {seconds}")
    return {"tmp": tmp, "dates": dates, "duck_db": duck_db, "cartera": cartera, "exported": exported}


def cell(value) -> tuple[str, str]:
    """A cell as (type, text): Decimal('1.50') != Decimal('1.5') != 1.5 != '1.5'."""
    return (type(value).__name__, str(value))


def duckdb_rows(db: Path, table: str) -> tuple[dict[str, str], list[dict]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        schema = SCHEMA.get(table, "marts")
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_schema = ? and table_name = ?", [schema, table]).fetchall())
        cur = con.execute(f"select * from {schema}.{table}")
        names = [d[0] for d in cur.description]
        return types, [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def spark_rows(warehouse: Path, table: str) -> tuple[dict[str, str], list[dict]]:
    """The Spark table's Parquet files, read with pyarrow (not through Spark or the import)."""
    folder = warehouse / "spark" / "warehouse" / f"{SCHEMA.get(table, 'marts')}.db" / table
    rows, types = [], {}
    for part in sorted(folder.glob("as_of_date=*")):
        day = dt.date.fromisoformat(part.name.split("=", 1)[1])
        for file in sorted(part.glob("*.parquet")):
            data = pq.read_table(file)
            types.update({f.name: str(f.type) for f in data.schema})
            rows += [{**r, "as_of_date": day} for r in data.to_pylist()]
    types["as_of_date"] = "date32[day]"  # the partition column (Hive-style folder name)
    return types, rows


def by_key(table: str, rows: list[dict]) -> dict[tuple, dict]:
    keyed = {tuple(r[k] for k in KEYS[table]): {c: cell(v) for c, v in r.items()} for r in rows}
    assert len(keyed) == len(rows), f"{table}: duplicate keys"
    return keyed


@pytest.mark.parametrize("table", [*COMPARED, "daily_actions", "bucket_roll_rates"])
def test_spark_marts_equal_duckdb_marts_row_for_row(built, table):
    duck_types, duck = duckdb_rows(built["duck_db"], table)
    spark_types, sparked = spark_rows(built["cartera"].warehouse_path, table)
    assert set(spark_types) == set(duck_types), f"{table}: columns differ"
    for column, duck_type in duck_types.items():
        expected = ARROW_OF.get(duck_type) or duck_type.lower().replace("decimal(", "decimal128(").replace(",", ", ")
        assert spark_types[column] == expected, f"{table}.{column}: duckdb {duck_type}, spark {spark_types[column]}"
    dates = {r["as_of_date"].isoformat() for r in duck}
    assert dates == set(built["dates"]), f"{table}: dates {sorted(dates)}"
    left, right = by_key(table, duck), by_key(table, sparked)
    assert left.keys() == right.keys(), (f"{table}: only duckdb {sorted(left.keys() - right.keys())[:5]}, "
                                         f"only spark {sorted(right.keys() - left.keys())[:5]}")
    differences = [(key, column, left[key][column], right[key][column])
                   for key in sorted(left) for column in left[key] if left[key][column] != right[key][column]]
    assert not differences, f"{table}: {len(differences)} cells differ, e.g. {differences[:5]}"


def test_the_data_exercises_the_rulebook_and_history(built):
    """Parity on trivial data would prove little: several segments, USD loans, payments,
    migrations between segments and loans entering or leaving on the incremental dates."""
    _, rows = duckdb_rows(built["duck_db"], "segment_assignments")
    segments = Counter(r["segment_code"] for r in rows)
    assert len(segments) >= 5, segments
    assert any(r["currency"] == "USD" for r in rows)
    assert any(r["paid_90d_pen"] != 0 for r in rows)
    assert any(r["max_dpd_12m"] > r["dpd"] for r in rows), "no loan whose history exceeds today's dpd"
    _, moves = duckdb_rows(built["duck_db"], "segment_migration")
    later = [m for m in moves if m["as_of_date"].isoformat() != built["dates"][0]]
    assert any(m["from_segment"] != m["to_segment"] and m["from_segment"] != "NUEVO" for m in later)
    assert built["exported"]["payments"] > 0 and built["exported"]["loans"] >= 4 * 250


def test_imported_spark_marts_are_what_publish_reads(built, tmp_path):
    """The marts hand-off: a DuckDB warehouse filled only by import_marts holds the same rows
    as the DuckDB-built marts, columns in the contract's order; re-importing replaces."""
    target = tmp_path / "imported.duckdb"
    con = duckdb.connect(str(target))
    try:
        dates = built["dates"]
        for _ in range(2):
            copied = spark.import_marts(con, built["cartera"].warehouse_path, dates[0], dates[-1],
                                        root=built["cartera"].warehouse_path / "spark" / "warehouse")
        assert copied["marts.segment_assignments"] > 0
    finally:
        con.close()
    for table in (*COMPARED, "daily_actions", "bucket_roll_rates"):
        duck_types, duck = duckdb_rows(built["duck_db"], table)
        imported_types, imported = duckdb_rows(target, table)
        assert list(imported_types) == list(duck_types) and imported_types == duck_types, table
        assert by_key(table, imported) == by_key(table, duck), table
    # the seeds cartera explain reads (strategy catalogue, field coverage) come along
    for seed in ("strategies", "field_coverage_departments"):
        con = duckdb.connect(str(target), read_only=True)
        other = duckdb.connect(str(built["duck_db"]), read_only=True)
        try:
            query = f"select * from config.{seed} order by all"
            assert con.execute(query).fetchall() == other.execute(query).fetchall(), seed
        finally:
            con.close()
            other.close()
