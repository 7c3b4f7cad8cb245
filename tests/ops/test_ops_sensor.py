"""The landing sensor: complete / incomplete drops, date order, processed dates, junk names."""

from __future__ import annotations

import json
import os

import pytest
from dagster import DagsterRun, DagsterRunStatus, RunRequest, SkipReason, build_sensor_context
from dagster._core.test_utils import instance_for_test

from orchestration.ops.jobs import JOB_NAME, TAG_AS_OF_DATE, TAG_LAUNCHED_BY
from orchestration.ops.landing import parse_drop_name, scan_landing
from orchestration.ops.sensors import TAG_DROP, landing_sensor, sensors


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def tick(instance, resource, cursor=None):
    context = build_sensor_context(instance=instance, resources={"cartera": resource}, cursor=cursor)
    result = landing_sensor(context)
    return result, context.cursor


def requests(result) -> list[RunRequest]:
    if isinstance(result, RunRequest):
        return [result]
    if isinstance(result, SkipReason) or result is None:
        return []
    return list(result)


def test_sensors_are_exported_with_sane_intervals():
    names = {s.name for s in sensors}
    assert {"cartera_landing_sensor", "cartera_failure_alerts", "cartera_freshness"} <= names
    assert landing_sensor.minimum_interval_seconds == 30
    assert landing_sensor.job_name == JOB_NAME


def test_complete_drop_launches_its_date(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05")
    result, _ = tick(instance, resource)
    (request,) = requests(result)
    fingerprint = scan_landing(landing).drops[0].fingerprint
    assert request.partition_key == "2026-01-05"
    assert request.run_key == f"2026-01-05:{fingerprint}"
    assert request.tags[TAG_DROP] == request.run_key
    assert request.tags[TAG_AS_OF_DATE] == "2026-01-05"
    assert request.tags[TAG_LAUNCHED_BY] == "sensor"


def test_incomplete_drop_is_not_launched(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05", complete=False)
    result, _ = tick(instance, resource)
    assert isinstance(result, SkipReason)
    assert "2026-01-05" in result.skip_message and "_control.csv" in result.skip_message


def test_drop_still_being_copied_waits(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05", age_seconds=0)
    result, _ = tick(instance, resource)
    assert isinstance(result, SkipReason) and "still changing" in result.skip_message


def test_earlier_incomplete_date_blocks_a_later_complete_one(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05", complete=False)
    make_drop(landing, "2026-01-06")
    make_drop(landing, "2026-01-07")
    blocked, _ = tick(instance, resource)
    assert isinstance(blocked, SkipReason)
    message = blocked.skip_message
    assert "2026-01-05" in message and "2026-01-06" in message and "wait" in message

    make_drop(landing, "2026-01-05")  # its _control.csv arrives
    result, _ = tick(instance, resource)
    assert [r.partition_key for r in requests(result)] == ["2026-01-05"]


def test_processed_dates_are_skipped(instance, places, make_drop, make_serving):
    landing, warehouse, resource = places
    for day in ("2026-01-05", "2026-01-06", "2026-01-07"):
        make_drop(landing, day)
    make_serving(warehouse, ["2026-01-05", "2026-01-06"])
    result, _ = tick(instance, resource)
    assert [r.partition_key for r in requests(result)] == ["2026-01-07"]

    make_serving(warehouse, ["2026-01-05", "2026-01-06", "2026-01-07"])
    done, _ = tick(instance, resource)
    assert isinstance(done, SkipReason) and "nothing to run" in done.skip_message


def test_gap_before_the_latest_processed_date_is_not_filled_silently(instance, places, make_drop, make_serving):
    landing, warehouse, resource = places
    for day in ("2026-01-05", "2026-01-06", "2026-01-07"):
        make_drop(landing, day)
    make_serving(warehouse, ["2026-01-05", "2026-01-07"])
    result, _ = tick(instance, resource)
    assert isinstance(result, SkipReason)
    assert "cartera run --from 2026-01-06 --to 2026-01-07" in result.skip_message


def test_one_run_at_a_time(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05")
    instance.add_run(DagsterRun(job_name=JOB_NAME, run_id="b" * 36, status=DagsterRunStatus.STARTED,
                                tags={TAG_AS_OF_DATE: "2026-01-02"}))
    result, _ = tick(instance, resource)
    assert isinstance(result, SkipReason)
    assert "in progress" in result.skip_message and "2026-01-02" in result.skip_message


def test_a_failed_drop_is_not_relaunched_until_it_changes(instance, places, make_drop):
    landing, _, resource = places
    make_drop(landing, "2026-01-05")
    (request,) = requests(tick(instance, resource)[0])
    instance.add_run(DagsterRun(job_name=JOB_NAME, run_id="c" * 36, status=DagsterRunStatus.FAILURE,
                                tags=request.tags))
    again, _ = tick(instance, resource)
    assert isinstance(again, SkipReason) and "FAILURE" in again.skip_message

    control = landing / "2026-01-05" / "_control.csv"  # the lender re-sends a corrected drop
    control.write_text(control.read_text() + "# corrected\n")
    os.utime(control, (0, 0))
    (fresh,) = requests(tick(instance, resource)[0])
    assert fresh.partition_key == "2026-01-05" and fresh.run_key != request.run_key


@pytest.mark.parametrize(
    "name", ["2026-1-5", "../etc", "latest", "2026-02-30", "20260105", "2026-01-05.bak", " 2026-01-05"]
)
def test_junk_names_are_not_dates(name):
    assert parse_drop_name(name) is None


def test_junk_folders_are_ignored_and_logged_once(instance, places, make_drop, capsys):
    landing, _, resource = places
    make_drop(landing, "2026-01-05")
    make_drop(landing, "2026-1-5")
    (landing / "latest").symlink_to(landing / "2026-01-05")
    (landing / "README.txt").write_text("notes")
    (landing / "2026-02-30").mkdir()
    (landing / ".partial").mkdir()  # hidden: an in-flight copy, not even reported
    (landing / "_generator_manifest.json").write_text("{}")  # metadata, not reported

    result, cursor = tick(instance, resource)
    assert [r.partition_key for r in requests(result)] == ["2026-01-05"]
    assert json.loads(cursor)["junk"] == ["2026-02-30", "2026-1-5", "README.txt", "latest"]
    logged = capsys.readouterr().err  # the sensor's log (Dagster's console handler)
    assert "not YYYY-MM-DD" in logged and "'2026-1-5'" in logged and "'latest'" in logged

    tick(instance, resource, cursor=cursor)
    assert "not YYYY-MM-DD" not in capsys.readouterr().err  # already reported
