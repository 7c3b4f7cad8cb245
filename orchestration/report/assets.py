"""The ``daily_report`` asset: one HTML report per published business date.

It runs after ``serving_warehouse`` and reads only what was published (the serving file,
read-only) plus the day's quarantine detail from the warehouse, so the report can never
show a figure BI tools do not see. Plotting code is imported inside the asset, keeping
Dagster's definition loading fast.
(No ``from __future__ import annotations``: Dagster inspects the context annotation.)
"""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    asset,
)

from orchestration.config import CarteraResource
from orchestration.partitions import (
    business_date_partitions,
    partition_date_range,
    single_run_backfill,
)

REPORTS_SUBDIR = "reports"


def dagster_check_results(instance, run_id: str | None, day: dt.date):
    """Asset-check evaluations recorded by Dagster in the run that published ``day``.

    Checks evaluated for a specific partition count only for that date; checks without a
    partition (a range run evaluates once) apply to every date of the run. Ingest checks
    (``raw/*``) and every failed check are listed one by one; the passed dbt tests, which
    dagster-dbt also reports as asset checks (hundreds), are one summary line.
    """
    from orchestration.report.data import Check

    if not run_id or instance.get_run_by_id(run_id) is None:
        return []
    out, others_passed = [], 0
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = entry.dagster_event.event_specific_data
        partition = getattr(ev, "partition", None)
        if partition and partition != day.isoformat():
            continue
        passed = bool(ev.passed)
        failing = ev.metadata.get("failing_count")
        failing = getattr(failing, "value", failing)
        # a ranged run evaluates once for all its dates; ingest adds the per-date figures
        by_date = getattr(ev.metadata.get("by_date"), "value", None) or {}
        if isinstance(by_date, dict) and day.isoformat() in by_date:
            mine = by_date[day.isoformat()]
            failing = mine.get("rows_quarantined", failing)
            passed = not mine.get("over_threshold", not passed)
        if passed and ev.asset_key.path[0] != "raw":  # a model's dbt tests: summarised below
            tests = getattr(ev.metadata.get("tests_passed"), "value", None)
            others_passed += tests if isinstance(tests, int) else 1
            continue
        detail = f"{'/'.join(ev.asset_key.path)} · severidad {ev.severity.value}"
        if failing is not None:
            detail += f" · filas que fallan: {failing}"
        if ev.description and ev.asset_key.path[0] != "raw":  # which of the model's tests failed
            detail += f" · {ev.description}"
        out.append(Check(name=ev.check_name, passed=passed, detail=detail, source="Dagster (asset check)"))
    if others_passed:
        out.append(Check(name="Pruebas de dbt sobre los modelos (asset checks)", passed=True,
                         detail=f"{others_passed} superadas (las fallidas se listan una por una)",
                         source="Dagster (asset check)"))
    return out


@asset(
    key=AssetKey("daily_report"),
    group_name="report",
    partitions_def=business_date_partitions,
    backfill_policy=single_run_backfill,
    deps=[AssetKey("serving_warehouse")],
    kinds={"html", "plotly"},
    description=(
        "Reporte diario en HTML autocontenido (sin red) por fecha publicada: indicadores, "
        "segmentos, migración, roll rates, categorías SBS, departamentos, calidad de datos. "
        "Escribe <warehouse>/reports/report_<YYYY-MM-DD>.html."
    ),
)
def daily_report(context: AssetExecutionContext, cartera: CarteraResource) -> MaterializeResult:
    from orchestration.report.data import published_dates
    from orchestration.report.render import write_report

    start, end = partition_date_range(context)
    if not cartera.serving_db.exists():
        context.log.warning(f"{cartera.serving_db} does not exist: nothing published, no report for {start}..{end}")
        return MaterializeResult(metadata={"reports": 0})

    days = published_dates(cartera.serving_db, start, end)
    if not days:
        context.log.info(f"no published date in {start}..{end} (days without a landing folder): no report")
        return MaterializeResult(metadata={"reports": 0})

    reports_dir = cartera.warehouse_path / REPORTS_SUBDIR
    written = []
    for day in days:
        path = write_report(
            cartera.serving_db,
            day,
            reports_dir,
            warehouse_db=cartera.warehouse_db,
            checks_for_run=lambda run_id, d: dagster_check_results(context.instance, run_id, d),
            quarantine_threshold=cartera.quarantine_threshold,
        )
        context.log.info(f"report for {day}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
        written.append(path)

    last = written[-1]
    return MaterializeResult(
        metadata={
            "reports": len(written),
            "first_date": days[0].isoformat(),
            "last_date": days[-1].isoformat(),
            "last_report": MetadataValue.path(str(last)),
            "last_report_bytes": last.stat().st_size,
        }
    )


report_assets = [daily_report]
