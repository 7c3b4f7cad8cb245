"""Transient failures are retried, data failures are not; failures become one-line alerts."""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
import sys
import textwrap
import time
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetSpec,
    Backoff,
    Definitions,
    Failure,
    MaterializeResult,
    RetryPolicy,
    SkipReason,
    asset,
    build_sensor_context,
    define_asset_job,
    multi_asset,
)
from dagster._core.test_utils import instance_for_test

from orchestration.ops.alerts import (
    failure_from_events,
    read_alerts,
    record_alert,
    stages_by_step,
    with_warehouse,
)
from orchestration.ops.freshness import expected_published_date, freshness
from orchestration.ops.retries import (
    TRANSIENT_RETRY_POLICY,
    TransientError,
    is_transient,
    one_line,
    only_transient_retries,
)
from orchestration.ops.sensors import freshness_sensor

LIMA = ZoneInfo("America/Lima")


def hold_lock(db_path, seconds: float) -> subprocess.Popen:
    """Another process that opens the DuckDB file read-write for ``seconds``."""
    code = textwrap.dedent(f"""
        import duckdb, time, sys
        con = duckdb.connect({str(db_path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


# ---- classification ---------------------------------------------------------------------------

def test_a_real_duckdb_lock_is_transient(tmp_path):
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    holder = hold_lock(db, 5)
    try:
        with pytest.raises(duckdb.IOException) as err:
            duckdb.connect(str(db))
    finally:
        holder.kill()
        holder.wait()
    assert is_transient(err.value)
    assert not is_transient(RuntimeError("dbt failed"))


def test_a_gzip_still_being_written_is_transient(tmp_path):
    path = tmp_path / "loans.csv.gz"
    path.write_bytes(gzip.compress(b"loan_id\n" + b"L1\n" * 5000)[:-40])  # cut short
    with pytest.raises(EOFError) as err:
        gzip.decompress(path.read_bytes())
    assert is_transient(err.value)


def test_data_failures_and_bugs_are_not_transient():
    assert not is_transient(Failure(description="loans.csv line 3 column amount: expected > 0"))
    assert not is_transient(KeyError("credit_type"))
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = TransientError("loans.csv is still growing")
    assert is_transient(wrapped)  # the cause chain counts
    assert one_line(Failure(description="a\n  b")) == "a b"
    assert one_line(ValueError("x\ny")) == "ValueError: x y"


def test_retry_policy_shape():
    assert TRANSIENT_RETRY_POLICY.max_retries == 3
    assert TRANSIENT_RETRY_POLICY.backoff == Backoff.EXPONENTIAL
    assert TRANSIENT_RETRY_POLICY.delay and TRANSIENT_RETRY_POLICY.delay > 0


# ---- behaviour inside a real Dagster run ------------------------------------------------------

FAST = RetryPolicy(max_retries=3, delay=0.05, backoff=Backoff.EXPONENTIAL)  # same shape, fast
ATTEMPTS: list[str] = []


def build_job(mode: str):
    @multi_asset(specs=[AssetSpec("landed", group_name="ingest")],
                 check_specs=[AssetCheckSpec("rules", asset="landed", blocking=True)],
                 retry_policy=FAST)
    def land(context):
        ATTEMPTS.append(mode)
        with only_transient_retries():
            if mode == "transient" and len(ATTEMPTS) < 3:
                raise duckdb.IOException('IO Error: Could not set lock on file "w.duckdb": Conflicting lock is held')
            if mode == "data":
                raise Failure(description="loans.csv line 7 column amount: expected a number", allow_retries=False)
            if mode == "bug":
                {}["credit_type"]
        yield MaterializeResult(asset_key="landed")
        yield AssetCheckResult(asset_key="landed", check_name="rules", passed=mode != "check",
                               description="12 of 300 rows quarantined (4.0% > 1%)")

    @asset(deps=["landed"], group_name="publish")
    def published():
        return None

    defs = Definitions(assets=[land, published], jobs=[define_asset_job("j")])
    return defs, defs.resolve_job_def("j")


@pytest.mark.parametrize(
    "mode, attempts, success, stage, reason",
    [
        ("transient", 3, True, None, None),
        ("data", 1, False, "ingest", "loans.csv line 7 column amount: expected a number"),
        ("bug", 1, False, "ingest", "KeyError: 'credit_type'"),
        ("check", 1, False, "quality", "rules: 12 of 300 rows quarantined (4.0% > 1%)"),
    ],
)
def test_only_transient_errors_are_retried(mode, attempts, success, stage, reason):
    ATTEMPTS.clear()
    defs, job = build_job(mode)
    with instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert len(ATTEMPTS) == attempts
    assert result.success is success
    failure = failure_from_events(result.all_events, stages_by_step(defs))
    if success:
        assert failure is None
    else:
        assert (failure.stage, failure.reason) == (stage, reason)


# ---- alert records ----------------------------------------------------------------------------

def test_alert_rows_are_written_once_per_run_and_stage(places):
    _, _, resource = places
    record_alert(resource, run_id="r1", as_of_date="2026-01-06", stage="ingest", reason="a\nb")
    record_alert(resource, run_id="r1", as_of_date="2026-01-06", stage="ingest", reason="again")
    record_alert(resource, run_id="r2", as_of_date="2026-01-07", stage="publish", reason="x")
    rows = read_alerts(resource)
    assert [(r[1].isoformat(), r[2], r[3], r[4]) for r in rows] == [
        ("2026-01-07", "r2", "publish", "x"),
        ("2026-01-06", "r1", "ingest", "again"),
    ]


def test_alert_waits_for_a_briefly_held_warehouse_lock(places):
    _, _, resource = places
    with_warehouse(resource, lambda con: con.execute("select 1"))  # create the file
    holder = hold_lock(resource.warehouse_db, 1.5)
    began = time.monotonic()
    try:
        record_alert(resource, run_id="r3", as_of_date="2026-01-08", stage="transform", reason="boom")
    finally:
        holder.wait()
    assert time.monotonic() - began >= 1.0  # it waited instead of failing
    assert read_alerts(resource)[0][2] == "r3"


# ---- freshness --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-12 11:00", "2026-01-09"),  # Monday after 10:00 -> Friday
        ("2026-01-13 09:00", "2026-01-09"),  # Tuesday before 10:00 -> still Friday
        ("2026-01-13 10:30", "2026-01-12"),  # Tuesday after 10:00 -> Monday
        ("2026-07-30 10:00", "2026-07-27"),  # after Fiestas Patrias
        ("2026-01-10 12:00", "2026-01-09"),  # Saturday
    ],
)
def test_expected_published_date(now, expected):
    when = dt.datetime.fromisoformat(now).replace(tzinfo=LIMA)
    assert expected_published_date(when).isoformat() == expected


def test_freshness_flags_a_late_date():
    monday_11 = dt.datetime(2026, 1, 12, 11, 0, tzinfo=LIMA)
    assert freshness(dt.date(2026, 1, 9), monday_11).fresh
    late = freshness(dt.date(2026, 1, 8), monday_11)
    assert not late.fresh and "2026-01-08" in late.message and "2026-01-09" in late.message
    assert not freshness(None, monday_11).fresh
    # 15:00 UTC on Monday is 10:00 in Lima
    assert freshness(dt.date(2026, 1, 8), dt.datetime(2026, 1, 12, 14, 59, tzinfo=dt.timezone.utc)).fresh


def test_freshness_sensor_alerts_once_per_expected_date(places, make_serving):
    _, warehouse, resource = places
    make_serving(warehouse, ["2025-01-06"])  # long ago: stale whatever today is
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, resources={"cartera": resource})
        first = freshness_sensor(context)
        second = freshness_sensor(build_sensor_context(instance=instance, resources={"cartera": resource},
                                                      cursor=context.cursor))
    assert isinstance(first, SkipReason) and first.skip_message.startswith("stale")
    assert isinstance(second, SkipReason)
    rows = [r for r in read_alerts(resource) if r[3] == "freshness"]
    assert len(rows) == 1 and "2025-01-06" in rows[0][4]
