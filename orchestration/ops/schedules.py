"""The daily schedule: 07:00 America/Lima, run the previous business date.

Weekends and national holidays are skipped through orchestration/calendar.py, which reads
the same holiday seed the dbt models use. The schedule launches only when the landing
folder of that date is complete and every earlier landing date is processed (the order
rule, see orchestration/ops/landing.py); otherwise the tick is skipped with the reason,
visible in the UI's tick history. The run key is the date, so a date is launched by the
schedule at most once; dates that land later are picked up by the landing sensor.
"""

from __future__ import annotations

import datetime as dt
import logging

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from orchestration.calendar import previous_business_day
from orchestration.config import CarteraResource
from orchestration.ops.freshness import LIMA
from orchestration.ops.jobs import JOB_NAME, run_tags
from orchestration.ops.landing import next_date_to_run, published_dates, scan_landing
from orchestration.partitions import TIMEZONE

log = logging.getLogger("cartera.ops")


def in_progress_runs(instance):
    """Runs of the cartera job that are queued or running (one writer at a time).

    A run whose ``cartera run`` process was killed is marked failed first (it would block
    every tick for ever otherwise): see orchestration/ops/instance.py."""
    from orchestration.ops.instance import fail_abandoned_runs

    for line in fail_abandoned_runs(instance):
        log.warning(line)
    return instance.get_runs(
        filters=RunsFilter(job_name=JOB_NAME, statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=5
    )


def target_date(context: ScheduleEvaluationContext) -> dt.date:
    when = context.scheduled_execution_time or dt.datetime.now(LIMA)
    return previous_business_day(when.astimezone(LIMA).date())


@schedule(
    name="cartera_daily_0700",
    job_name=JOB_NAME,
    cron_schedule="0 7 * * *",
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        "Every day at 07:00 Lima: run the previous business date (weekends and holidays "
        "from dbt_project/seeds/pe_holidays.csv) if its landing folder is complete and "
        "every earlier landing date is processed; otherwise skip and say why."
    ),
)
def daily_schedule(context: ScheduleEvaluationContext, cartera: CarteraResource):
    day = target_date(context)
    iso = day.isoformat()
    processed = published_dates(cartera.serving_db)
    if day in processed:
        return SkipReason(f"{iso} is already published")
    busy = in_progress_runs(context.instance)
    if busy:
        return SkipReason(f"{iso} waits: run {busy[0].run_id[:8]} is still in progress")
    scan = scan_landing(cartera.landing_path)
    drop = scan.by_date().get(day)
    if drop is None:
        return SkipReason(f"{iso}: no landing folder {cartera.drop_dir(iso)} yet")
    if not drop.complete:
        return SkipReason(f"{iso}: landing folder is incomplete (no _control.csv yet)")
    plan = next_date_to_run(scan, processed)
    if plan.drop is None or plan.drop.date != day:
        return SkipReason(f"{iso} waits for an earlier date: {plan.message}")
    context.log.info(f"launching {iso}: {plan.message}")
    return RunRequest(
        run_key=iso,
        partition_key=iso,
        tags=run_tags(iso, launched_by="schedule"),
    )


schedules = [daily_schedule]
