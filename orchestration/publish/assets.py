"""The publish asset: what BI tools, operations and auditors read (contract section 4).

``serving_warehouse`` runs after the dbt marts of its dates (their tests and the ingest
checks gate it: a failed blocking check stops the run before this step) and publishes
each date of the run's range that has rows in marts.segment_assignments:

1. stage everything, touching nothing live: the next serving.duckdb state (standby file
   updated in place, or a copy; customer_id -> customer_key; run_audit refreshed), the
   Parquet files and the worklist CSVs (exported from that new state / the restricted mart);
2. PostgreSQL, when configured: one transaction per date (DELETE + COPY);
3. swap: Parquet and worklist files renamed over the live ones, then serving.duckdb last
   (``os.replace``); then the run's rows are appended to the warehouse's audit.run_audit.

A failure before step 3 leaves every file output exactly as it was (PostgreSQL may then
hold the new dates; re-running replaces them). The serving file is swapped last, so its
``published`` run_audit row appears only when every other target has the date.
See docs/publish.md.
"""

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from orchestration.config import CarteraResource, ConfigError
from orchestration.ops.retries import only_transient_retries
from orchestration.partitions import (
    business_date_partitions,
    partition_date_range,
    single_run_backfill,
)
from orchestration.publish import audit
from orchestration.publish.files import Staging, remove_leftovers
from orchestration.publish.parquet import stage_parquet
from orchestration.publish.pii import hmac_pads
from orchestration.publish.postgres import PostgresPublishError, publish_postgres, redacted_dsn
from orchestration.publish.serving import (
    BI_TABLES,
    SERVING_STORAGE_VERSION,
    PublishError,
    fault_point_before_swap,
    stage_serving,
    table_exists,
)
from orchestration.publish.worklist import SOURCE as WORKLIST_SOURCE
from orchestration.publish.worklist import stage_worklists

MART_DEPS = ["segment_assignments", "segment_summary", "segment_migration", "daily_actions"]


@dataclass
class PublishResult:
    dates: list[str]
    skipped: list[str]
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> date -> rows
    serving_path: str = ""
    serving_bytes: int = 0
    storage_version: str = ""
    serving_method: str = ""
    parquet_files: int = 0
    worklists: dict[str, int] = field(default_factory=dict)
    postgres: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def rows_total(self, table: str) -> int:
        return sum(self.rows.get(table, {}).values())


class _Lap:
    """Records the seconds since the previous lap under a name (materialization metadata)."""

    def __init__(self, into: dict[str, float]):
        self.into, self.last = into, time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = now - self.last
        self.last = now


def _dates_to_publish(con, start: str, end: str) -> tuple[list[dt.date], list[str]]:
    if not table_exists(con, "marts", "segment_assignments"):
        raise PublishError(
            "marts.segment_assignments does not exist in the warehouse: the dbt models must run first"
        )
    days = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT as_of_date FROM marts.segment_assignments "
            "WHERE as_of_date BETWEEN ? AND ? ORDER BY 1",
            [start, end],
        ).fetchall()
    ]
    if days and table_exists(con, "raw", "drops"):
        # Safety net behind the blocking checks: never publish a date whose latest drop
        # was rejected (its marts rows would be stale).
        rejected = con.execute(
            "SELECT as_of_date, arg_max(message, ingested_at) FROM raw.drops "
            "WHERE as_of_date IN (SELECT unnest(CAST(? AS DATE[]))) GROUP BY as_of_date "
            "HAVING arg_max(status, ingested_at) = 'rejected' ORDER BY 1",
            [[d.isoformat() for d in days]],
        ).fetchall()
        if rejected:
            day, message = rejected[0]
            raise PublishError(f"the drop of {day} was rejected ({message}); not publishing it")
    published = {d.isoformat() for d in days}
    from orchestration.partitions import dates_in_range

    skipped = [d for d in dates_in_range(start, end) if d not in published]
    return days, skipped


def publish_range(
    cartera: CarteraResource,
    start: str,
    end: str,
    run_id: str,
    run_started_at: dt.datetime | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> PublishResult:
    """Publish every date in [start, end] that has segment assignments (see module doc)."""
    key = cartera.pii_key()  # fails first, with a message naming CARTERA_PII_KEY
    pads = hmac_pads(key).params()
    del key
    dsn = cartera.postgres_dsn()
    started_at = run_started_at or audit.utcnow()
    t0 = time.monotonic()

    con = cartera.connect()  # holds the warehouse lock: no other publish can run meanwhile
    try:
        con.execute("SET enable_progress_bar = false")
        days, skipped = _dates_to_publish(con, start, end)
        result = PublishResult(dates=[d.isoformat() for d in days], skipped=skipped)
        result.serving_path = str(cartera.serving_db)
        if skipped:
            log(f"no segment assignments for {', '.join(skipped)}: skipped")
        if not days:
            return result
        removed = remove_leftovers(cartera.warehouse_path, cartera.serving_db)
        if removed:
            log(f"removed leftovers of an interrupted publish: {', '.join(removed)}")

        audit.ensure_audit_table(con)
        staged = stage_serving(con, cartera.serving_db, days, pads, run_id)
        result.seconds.update({f"serving_{k}": v for k, v in staged.seconds.items()})
        staging = None
        lap = _Lap(result.seconds)
        try:
            # ended_at: the run's results are final; only writing them out remains.
            audit.stage_run_rows(
                con, run_id, days, "published", started_at, audit.utcnow(), published=True
            )
            staged.write_run_audit(audit.SERVING_AUDIT_SQL)
            lap("run_audit")
            staging = Staging(cartera.warehouse_path)
            result.parquet_files = len(
                stage_parquet(con, staging, cartera.warehouse_path / "parquet", days, list(BI_TABLES))
            )
            lap("parquet")
            if table_exists(con, *WORKLIST_SOURCE.split(".")):
                result.worklists = stage_worklists(con, staging, cartera.warehouse_path, days)
            else:
                log(f"{WORKLIST_SOURCE} does not exist: no worklist written")
            lap("worklist")
            if dsn:
                result.postgres = redacted_dsn(dsn)
                pg_rows = publish_postgres(con, dsn, days, WORKLIST_SOURCE)
                result.rows.update({f"postgres:{k}": v for k, v in pg_rows.items()})
                lap("postgres")

            staged.detach()
            lap("serving_checkpoint")
            fault_point_before_swap()
            staging.commit()
            staged.commit()
            lap("swap")
        except BaseException:
            if staging is not None:
                staging.discard()
            staged.discard()
            raise
        audit.commit_run_rows(con)
        result.rows.update(staged.rows)
        result.rows["run_audit"] = {d.isoformat(): 1 for d in days}
        result.storage_version = staged.storage_version
        result.serving_method = staged.method
    finally:
        con.close()
    result.serving_bytes = cartera.serving_db.stat().st_size
    result.seconds["total"] = time.monotonic() - t0
    return result


def _run_started_at(context: AssetExecutionContext) -> dt.datetime | None:
    try:
        record = context.instance.get_run_record_by_id(context.run.run_id)
        if record and record.start_time:
            return dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc).replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - the audit falls back to the publish start time
        pass
    return None


@asset(
    name="serving_warehouse",
    group_name="publish",
    partitions_def=business_date_partitions,
    backfill_policy=single_run_backfill,
    deps=[AssetKey(name) for name in MART_DEPS],
    kinds={"duckdb", "parquet", "postgres"},
    owners=["team:cartera-data"],
    tags={"stage": "publish"},
    description=(
        "serving.duckdb (swapped atomically, read-only for BI), Parquet export, PostgreSQL "
        "(optional), restricted worklist and run_audit for the run's business dates."
    ),
)
def serving_warehouse(context: AssetExecutionContext, cartera: CarteraResource) -> MaterializeResult:
    start, end = partition_date_range(context)
    # Only transient errors (a held lock) are retried; a full disk or a refused PostgreSQL
    # target fails once with its one-line reason.
    with only_transient_retries():
        try:
            result = publish_range(
                cartera, start, end, context.run.run_id, _run_started_at(context), context.log.info
            )
        except (ConfigError, PublishError, PostgresPublishError) as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    if not result.dates:
        context.log.info(f"nothing to publish in {start}..{end}")
    metadata = {
        "dates_published": MetadataValue.json(result.dates),
        "dates_skipped": MetadataValue.json(result.skipped),
        "serving_path": MetadataValue.path(result.serving_path),
        "serving_size_bytes": MetadataValue.int(result.serving_bytes),
        "storage_version": MetadataValue.text(result.storage_version or SERVING_STORAGE_VERSION),
        "serving_write_method": MetadataValue.text(result.serving_method or "-"),
        "parquet_root": MetadataValue.path(str(cartera.warehouse_path / "parquet")),
        "parquet_files_written": MetadataValue.int(result.parquet_files),
        "worklist_rows": MetadataValue.json(result.worklists),
        "postgres": MetadataValue.text(result.postgres or "not configured"),
        "seconds": MetadataValue.json({k: round(v, 3) for k, v in result.seconds.items()}),
    }
    for table in BI_TABLES:
        if table in result.rows:
            metadata[f"rows_{table}"] = MetadataValue.int(result.rows_total(table))
    return MaterializeResult(metadata=metadata)


publish_assets = [serving_warehouse]
