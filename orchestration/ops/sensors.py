"""Sensors of the cartera code location.

* ``cartera_landing_sensor`` (every 30 s) launches the next landing date in date order
  once its ``_control.csv`` is there (see orchestration/ops/landing.py for the rules and
  the source of truth for "processed": the serving file).
* ``cartera_failure_alerts`` writes an alert for every failed run the daemon launched
  (schedule, sensor, UI; ``cartera run`` reports its own failures).
* ``cartera_freshness`` (every 5 min) flags a serving file older than the business
  calendar allows after 10:00 Lima (see orchestration/ops/freshness.py).
"""

from __future__ import annotations

import datetime as dt
import json

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from orchestration.config import CarteraResource
from orchestration.ops.alerts import (
    RunFailure,
    failure_from_events,
    record_alert,
    report_run_failure,
    run_started_at,
    stages_by_step,
)
from orchestration.ops.freshness import LIMA, freshness
from orchestration.ops.jobs import JOB_NAME, TAG_LAUNCHED_BY, dates_of_run, run_tags
from orchestration.ops.landing import (
    dates_between,
    next_date_to_run,
    published_dates,
    scan_landing,
)
from orchestration.ops.schedules import in_progress_runs

TAG_DROP = "cartera/drop"  # "<date>:<sha256 prefix of _control.csv>" -- one run per drop


def already_tried(instance, drop) -> str | None:
    """Why ``drop`` must not be launched again (its run already ended), or None."""
    drop_tag = f"{drop.iso}:{drop.fingerprint}"
    earlier = instance.get_runs(filters=RunsFilter(job_name=JOB_NAME, tags={TAG_DROP: drop_tag}), limit=1)
    if not earlier:
        return None
    return (
        f"{drop.iso}: run {earlier[0].run_id[:8]} for this drop ended {earlier[0].status.value}; "
        f"fix the drop (a new _control.csv starts a new run) or re-run it: "
        f"cartera run --from {drop.iso} --to {drop.iso}"
    )


def _log_new_junk(context: SensorEvaluationContext, junk: list[str], cursor: dict) -> bool:
    """Log landing entries that are not YYYY-MM-DD folders, once each (tracked in the cursor)."""
    known = set(cursor.get("junk", []))
    new = [name for name in junk if name not in known]
    if new:
        context.log.warning(
            "ignoring landing entries that are not YYYY-MM-DD folders: " + ", ".join(map(repr, new))
        )
    changed = set(junk) != known
    cursor["junk"] = sorted(junk)
    return changed


@sensor(
    name="cartera_landing_sensor",
    job_name=JOB_NAME,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Launches the earliest unprocessed landing date once its _control.csv exists; never "
        "a later date while an earlier one (complete or not) is unprocessed; ignores folders "
        "not named YYYY-MM-DD."
    ),
)
def landing_sensor(context: SensorEvaluationContext, cartera: CarteraResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    scan = scan_landing(cartera.landing_path)
    if _log_new_junk(context, scan.junk, cursor):
        context.update_cursor(json.dumps(cursor))

    busy = in_progress_runs(context.instance)
    if busy:
        run = busy[0]
        return SkipReason(
            f"run {run.run_id[:8]} ({run.tags.get('cartera/as_of_date', '?')}) is in progress: "
            "one run at a time"
        )
    plan = next_date_to_run(scan, published_dates(cartera.serving_db))
    if plan.drop is None:
        context.log.info(plan.message)
        return SkipReason(plan.message)

    drop = plan.drop
    drop_tag = f"{drop.iso}:{drop.fingerprint}"
    blocked = already_tried(context.instance, drop)
    if blocked:
        context.log.info(blocked)
        return SkipReason(blocked)

    context.log.info(f"launching {plan.message}")
    return RunRequest(
        run_key=drop_tag,
        partition_key=drop.iso,
        tags={**run_tags(drop.iso, launched_by="sensor"), TAG_DROP: drop_tag},
    )


@run_failure_sensor(
    name="cartera_failure_alerts",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Writes audit.alerts (date, stage, reason) and a run_audit 'failed' row for every failed run.",
)
def failure_alert_sensor(context: RunFailureSensorContext, cartera: CarteraResource):
    run = context.dagster_run
    if run.job_name != JOB_NAME or run.tags.get(TAG_LAUNCHED_BY) == "cli":
        return  # `cartera run` reports its own failures
    records = context.instance.all_logs(
        run.run_id,
        of_type={
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.RUN_FAILURE,
        },
    )
    from orchestration.definitions import defs  # loaded already: this sensor lives in it

    failure = failure_from_events(
        [r.dagster_event for r in records], stages_by_step(defs)
    ) or RunFailure("run", " ".join((context.failure_event.message or "run failed").split()))
    first, last = dates_of_run(dict(run.tags))
    dates = [first] if first else []
    if first and last and last != first:
        landed = dates_between(
            scan_landing(cartera.landing_path),
            dt.date.fromisoformat(first),
            dt.date.fromisoformat(last),
        )
        dates = [d.iso for d in landed] or [first]
    report_run_failure(
        cartera,
        run_id=run.run_id,
        dates=dates,
        stage=failure.stage,
        reason=failure.reason,
        logger=context.log,
        started_at=run_started_at(context.instance, run.run_id),
    )


@sensor(
    name="cartera_freshness",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After 10:00 Lima the serving file must hold the previous business date; when it "
        "does not, logs a warning and writes one audit.alerts row (stage 'freshness') per day."
    ),
)
def freshness_sensor(context: SensorEvaluationContext, cartera: CarteraResource):
    published = published_dates(cartera.serving_db)
    state = freshness(max(published) if published else None, dt.datetime.now(LIMA))
    if state.fresh:
        return SkipReason(state.message)
    context.log.warning(state.message)
    if context.cursor != state.expected.isoformat():
        record_alert(
            cartera,
            run_id=None,
            as_of_date=state.expected.isoformat(),
            stage="freshness",
            reason=state.message,
            logger=context.log,
        )
        context.update_cursor(state.expected.isoformat())
    return SkipReason(state.message)


sensors = [landing_sensor, failure_alert_sensor, freshness_sensor]
