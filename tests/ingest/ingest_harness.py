"""Test helper: run the ingest multi-asset through Dagster and read back what it did."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from orchestration.config import CarteraResource
from orchestration.ingest.assets import ingest_assets

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def resource(tmp_path: Path, **overrides) -> CarteraResource:
    return CarteraResource(
        landing_dir=str(tmp_path / "landing"), warehouse_dir=str(tmp_path / "warehouse"), **overrides
    )


def run(cartera: CarteraResource, start: str, end: str | None = None, extra_assets=()):
    """Materialize raw/* for one date (or the range start..end) in process; never raises."""
    kwargs = {"partition_key": start} if end is None else {
        "tags": {RANGE_START_TAG: start, RANGE_END_TAG: end}
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*ingest_assets, *extra_assets],
        resources={"cartera": cartera},
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )
    _INSTANCES[result.run_id] = instance
    return result


_INSTANCES: dict[str, dg.DagsterInstance] = {}


def log_messages(result) -> list[str]:
    """Every message the run logged (context.log lines included)."""
    return [entry.user_message for entry in _INSTANCES[result.run_id].all_logs(result.run_id)]


def query(cartera: CarteraResource, sql: str, params=None) -> list[tuple]:
    if not cartera.warehouse_db.exists():
        return []
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def count(cartera: CarteraResource, table: str, day: str | None = None) -> int:
    if not cartera.warehouse_db.exists():
        return 0
    where = " WHERE as_of_date = CAST(? AS DATE)" if day else ""
    try:
        return query(cartera, f"SELECT count(*) FROM {table}{where}", [day] if day else None)[0][0]
    except duckdb.CatalogException:
        return 0


def failure_description(result) -> str | None:
    """The description of the first step failure's ``dagster.Failure`` (None if none)."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.step_failure_data.user_failure_data
            return data.description if data else event.step_failure_data.error.message
    return None


def checks(result) -> dict[str, object]:
    """check name -> AssetCheckEvaluation (passed, metadata, severity)."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            out[evaluation.check_name] = evaluation
    return out


def materializations(result) -> dict[str, dict]:
    """asset key ("raw/loans") -> metadata of its materialization."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            out[mat.asset_key.to_user_string()] = mat.metadata
    return out
