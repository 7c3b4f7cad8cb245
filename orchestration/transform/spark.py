"""Run the dbt models on Apache Spark (dbt-spark) instead of DuckDB: the hand-offs around dbt.

Ingest and quality stay as they are (they validate each drop and land typed rows in the
DuckDB warehouse); the transformation runs on Spark when ``CARTERA_ENGINE=spark``:

1. **raw hand-off** -- :func:`export_raw` writes each run date's typed raw rows to Parquet,
   one Hive-style partition per date: ``<warehouse>/spark/raw/<table>/as_of_date=D/part-0.parquet``.
   That folder is the Spark side's raw history (every date ever landed); the staging views'
   pre-hook ``register_raw_table`` declares it as the partitioned Parquet tables
   ``raw.loans`` ... in the Spark metastore. A Spark cluster reads the same folder from shared
   storage, so it never needs the DuckDB file.
2. **dbt on Spark** -- the same models and seeds with the ``spark`` target of
   ``dbt_project/profiles.yml`` (:func:`dbt_env` sets its folders). Incremental models use
   ``insert_overwrite`` partitioned by ``as_of_date`` on Parquet (macros/cross_adapter.sql).
3. **marts hand-off** -- :func:`import_marts` loads the run dates of the Spark marts' Parquet
   partitions into the DuckDB warehouse's ``marts`` / ``restricted`` tables (replacing those
   dates) and the seed tables into ``config``, so publish, report and ``cartera explain``
   read them unchanged.

docs/scale-out.md explains when this pays off and how to point it at a cluster.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

ENGINE_ENV = "CARTERA_ENGINE"
ENGINES = ("duckdb", "spark")

# The raw tables the models read (docs/design.md). Their Spark DDL is in the dbt hook
# register_raw_table (macros/cross_adapter.sql); as_of_date is the partition column.
RAW_TABLES = ("loans", "payments", "customers", "fx_rates")

# Marts copied back for publish: (Spark database, table). Optional ones may not exist yet.
MARTS = (("marts", "segment_assignments"), ("marts", "segment_summary"), ("marts", "segment_migration"),
         ("restricted", "daily_actions"), ("marts", "bucket_roll_rates"))


# Models not (yet) portable to Spark SQL, left out of Spark runs (dbt --exclude).
SPARK_EXCLUDED_MODELS: tuple[str, ...] = ()


def dbt_exclude_args(engine_name: str = "spark") -> list[str]:
    """dbt arguments leaving out the models that do not run on ``engine_name``."""
    if engine_name != "spark" or not SPARK_EXCLUDED_MODELS:
        return []
    return ["--exclude", *SPARK_EXCLUDED_MODELS]


class EngineError(ValueError):
    """CARTERA_ENGINE names an engine cartera does not have."""


def engine(value: str | None = None) -> str:
    """The transformation engine: ``value``, else $CARTERA_ENGINE, else duckdb."""
    name = (value or os.environ.get(ENGINE_ENV) or "duckdb").strip().lower()
    if name not in ENGINES:
        raise EngineError(f"{ENGINE_ENV}={name!r}: expected one of {', '.join(ENGINES)}")
    return name


# Folders the ``spark`` target of profiles.yml reads from the environment. An operator may
# set them (e.g. shared storage on a cluster); otherwise they live under <warehouse>/spark/.
# Captured when the code location loads, before any run sets them for its own warehouse.
SETTING_KEYS = ("CARTERA_SPARK_DIR", "CARTERA_SPARK_RAW_DIR", "CARTERA_SPARK_WAREHOUSE_DIR")
_OPERATOR_SETTINGS = {key: os.environ[key] for key in SETTING_KEYS if os.environ.get(key)}


def spark_dir(warehouse: Path) -> Path:
    """Everything Spark keeps for one cartera warehouse by default: raw Parquet, its own
    Parquet warehouse (spark.sql.warehouse.dir) and the Derby metastore."""
    return Path(warehouse).resolve() / "spark"


def spark_settings(warehouse: Path) -> dict[str, str]:
    """The variables profiles.yml's ``spark`` target reads, for ``warehouse``."""
    base = spark_dir(warehouse)
    settings = {"CARTERA_DBT_TARGET": "spark", "CARTERA_SPARK_DIR": str(base),
                "CARTERA_SPARK_RAW_DIR": str(base / "raw"), "CARTERA_SPARK_WAREHOUSE_DIR": str(base / "warehouse")}
    settings.update(_OPERATOR_SETTINGS)
    return settings


def raw_dir(warehouse: Path) -> Path:
    return Path(spark_settings(warehouse)["CARTERA_SPARK_RAW_DIR"])


def spark_warehouse_dir(warehouse: Path) -> Path:
    return Path(spark_settings(warehouse)["CARTERA_SPARK_WAREHOUSE_DIR"])


def dbt_env(warehouse: Path, base: dict | None = None) -> dict[str, str]:
    """Environment for a dbt process that runs on the local Spark session of ``warehouse``."""
    env = dict(os.environ if base is None else base)
    env.update(spark_settings(warehouse))
    Path(env["CARTERA_SPARK_DIR"]).mkdir(parents=True, exist_ok=True)
    return env


def _iso(day) -> str:
    return day.isoformat() if isinstance(day, (dt.date, dt.datetime)) else str(day)


def export_raw(con, dates, target: Path) -> dict[str, int]:
    """Write the raw rows of ``dates`` from the DuckDB warehouse (``con``) to Parquet
    partitions under ``target``; a date already exported is replaced whole.

    Returns rows written per table. Called after ingest, before dbt runs on Spark."""
    written = {table: 0 for table in RAW_TABLES}
    for table in RAW_TABLES:
        columns = [row[0] for row in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' "
            "and table_name = ? order by ordinal_position", [table]).fetchall()]
        if not columns:
            raise RuntimeError(f"raw.{table} does not exist in the warehouse: ingest must run before the Spark export")
        stored = ", ".join(f'"{c}"' for c in columns if c != "as_of_date")
        for day in dates:
            day = _iso(day)
            folder = Path(target) / table / f"as_of_date={day}"
            rows = con.execute(f"select count(*) from raw.{table} where as_of_date = cast(? as date)", [day]).fetchone()[0]
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / ".part-0.parquet.tmp"
            final = folder / "part-0.parquet"
            # An empty payments file still writes a (header-only) Parquet file: the partition
            # exists, so "no payments on D" is distinguishable from "D not exported".
            con.execute(
                f"copy (select {stored} from raw.{table} where as_of_date = cast('{day}' as date) "
                f"order by source_line) to '{tmp}' (format parquet)")
            os.replace(tmp, final)
            written[table] += rows
    return written


def import_marts(con, warehouse: Path, start: str, end: str, root: Path | None = None) -> dict[str, int]:
    """Replace the dates start..end of the DuckDB marts with the Spark marts' Parquet rows.

    Tables are created on first use with the Spark table's columns in the dbt contract's
    order (Spark stores the partition column last; the mart's order puts as_of_date first)."""
    root = Path(root) if root else spark_warehouse_dir(warehouse)
    copied = import_seeds(con, root)
    for schema, table in MARTS:
        folder = root / f"{schema}.db" / table
        if not folder.exists():
            continue
        files = sorted(str(p) for p in folder.glob("as_of_date=*/*.parquet"))
        con.execute(f"create schema if not exists {schema}")
        source = (f"read_parquet({files!r}, hive_partitioning = true, hive_types = {{'as_of_date': date}})"
                  if files else None)
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = ?", [schema, table]).fetchone()[0]
        if not exists:
            if source is None:
                continue
            names = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]
            ordered = ["as_of_date"] + [n for n in names if n != "as_of_date"]
            con.execute(f"create table {schema}.{table} as select {', '.join(ordered)} from {source} limit 0")
        con.execute("begin")
        try:
            con.execute(f"delete from {schema}.{table} where as_of_date between cast(? as date) and cast(? as date)",
                        [start, end])
            if source is not None:
                con.execute(f"insert into {schema}.{table} by name select * from {source} "
                            f"where as_of_date between cast(? as date) and cast(? as date)", [start, end])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        copied[f"{schema}.{table}"] = con.execute(
            f"select count(*) from {schema}.{table} where as_of_date between cast(? as date) and cast(? as date)",
            [start, end]).fetchone()[0]
    return copied


def import_seeds(con, root: Path) -> dict[str, int]:
    """Replace the DuckDB warehouse's ``config`` seed tables with Spark's (``cartera explain``
    reads the strategy catalogue and coverage list from there). Seeds are small. ``root`` is
    Spark's warehouse folder (spark.sql.warehouse.dir)."""
    folder = Path(root) / "config.db"
    copied = {}
    if not folder.exists():
        return copied
    con.execute("create schema if not exists config")
    for table in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(str(p) for p in table.glob("*.parquet"))
        if files:
            con.execute(f"create or replace table config.{table.name} as select * from read_parquet({files!r})")
            copied[f"config.{table.name}"] = con.execute(f"select count(*) from config.{table.name}").fetchone()[0]
    return copied


def build_on_spark(context, dbt, cartera, start: str, end: str, args: list[str], events):
    """The transform step when CARTERA_ENGINE=spark (called by orchestration/transform/assets.py).

    Exports the run's raw dates, runs the same dbt ``args`` on the ``spark`` target (events
    stream to Dagster as on DuckDB through ``events``, the caller's conversion of the dbt
    invocation into assets and asset checks), then imports the run's marts into
    the DuckDB warehouse for publish."""
    from orchestration.ops.retries import only_transient_retries

    target = raw_dir(cartera.warehouse_path)
    con = cartera.connect()
    try:
        # the run's dates, plus earlier landed dates never exported (a warehouse that ran on
        # DuckDB before switching engines): the features need the history
        landed = [row[0] for row in con.execute(
            "select distinct as_of_date from raw.loans where as_of_date <= cast(? as date) order by 1", [end]).fetchall()]
        dates = [d for d in landed if d.isoformat() >= start
                 or not (target / "loans" / f"as_of_date={d.isoformat()}").exists()]
        written = export_raw(con, dates, target)
    finally:
        con.close()
    context.log.info(f"spark: raw hand-off of {len(dates)} date(s) to {target}: {written}")
    settings = spark_settings(cartera.warehouse_path)
    Path(settings["CARTERA_SPARK_DIR"]).mkdir(parents=True, exist_ok=True)
    os.environ.update(settings)  # the dbt subprocess reads them
    with only_transient_retries():
        yield from events(dbt.cli([*args, *dbt_exclude_args()], context=context))
    con = cartera.connect()
    try:
        copied = import_marts(con, cartera.warehouse_path, start, end)
    finally:
        con.close()
    context.log.info(f"spark: marts imported into {cartera.warehouse_db.name} for publish: {copied}")
