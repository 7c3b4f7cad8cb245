"""The 07:00 schedule picks the previous business date from the shared holiday seed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterRun, DagsterRunStatus, RunRequest, SkipReason, build_schedule_context
from dagster._core.test_utils import instance_for_test

from orchestration.ops.jobs import JOB_NAME, TAG_AS_OF_DATE, TAG_LAUNCHED_BY, TAG_RULEBOOK_VERSION
from orchestration.ops.schedules import daily_schedule, schedules

LIMA = ZoneInfo("America/Lima")


def evaluate(instance, resource, when: dt.datetime):
    context = build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"cartera": resource}
    )
    return daily_schedule(context)


def at_seven(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=7, tzinfo=LIMA)


def test_schedule_definition():
    assert schedules == [daily_schedule]
    assert daily_schedule.cron_schedule == "0 7 * * *"
    assert daily_schedule.execution_timezone == "America/Lima"
    assert daily_schedule.job_name == JOB_NAME


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-09", "2026-01-08"),  # Friday -> Thursday
        ("2026-01-12", "2026-01-09"),  # Monday -> the previous Friday
        ("2026-07-30", "2026-07-27"),  # after Fiestas Patrias (Jul 28-29) -> Monday Jul 27
        ("2026-01-02", "2025-12-31"),  # the day after New Year -> Dec 31
        ("2026-04-06", "2026-04-01"),  # Monday after Holy Thursday/Good Friday -> Wednesday
    ],
)
def test_targets_previous_business_date(places, now, expected, make_drop, make_serving):
    landing, warehouse, resource = places
    make_drop(landing, expected)
    with instance_for_test() as instance:
        result = evaluate(instance, resource, at_seven(now))
    assert isinstance(result, RunRequest), result
    assert result.partition_key == expected
    assert result.run_key == expected
    assert result.tags[TAG_AS_OF_DATE] == expected
    assert result.tags[TAG_LAUNCHED_BY] == "schedule"
    assert result.tags[TAG_RULEBOOK_VERSION] not in ("", "unknown")


def test_skips_when_landing_is_missing_or_incomplete(places, make_drop, make_serving):
    landing, _, resource = places
    with instance_for_test() as instance:
        missing = evaluate(instance, resource, at_seven("2026-01-12"))
        make_drop(landing, "2026-01-09", complete=False)
        incomplete = evaluate(instance, resource, at_seven("2026-01-12"))
    assert isinstance(missing, SkipReason) and "2026-01-09" in missing.skip_message
    assert "no landing folder" in missing.skip_message
    assert isinstance(incomplete, SkipReason) and "_control.csv" in incomplete.skip_message


def test_skips_already_published_and_waits_for_earlier_dates(places, make_drop, make_serving):
    landing, warehouse, resource = places
    for day in ("2026-01-07", "2026-01-08"):
        make_drop(landing, day)
    with instance_for_test() as instance:
        blocked = evaluate(instance, resource, at_seven("2026-01-09"))  # wants 01-08, 01-07 pending
        make_serving(warehouse, ["2026-01-07", "2026-01-08"])
        done = evaluate(instance, resource, at_seven("2026-01-09"))
    assert isinstance(blocked, SkipReason)
    assert "2026-01-07" in blocked.skip_message and "earlier" in blocked.skip_message
    assert isinstance(done, SkipReason) and "already published" in done.skip_message


def test_skips_while_a_run_is_in_progress(places, make_drop, make_serving):
    landing, _, resource = places
    make_drop(landing, "2026-01-08")
    with instance_for_test() as instance:
        instance.add_run(DagsterRun(job_name=JOB_NAME, run_id="a" * 36, status=DagsterRunStatus.STARTED))
        result = evaluate(instance, resource, at_seven("2026-01-09"))
    assert isinstance(result, SkipReason) and "in progress" in result.skip_message
