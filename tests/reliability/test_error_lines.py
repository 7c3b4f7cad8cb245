"""A full disk becomes one actionable line, whatever raised it and however it was wrapped.

Real ENOSPC errors without mounting anything: ``/dev/full`` refuses every write with
"No space left on device". Serialized the way Dagster stores a step's error, then read back
by ``reason_from_error`` (what the CLI and the failure sensor print). The end-to-end case,
through ``cartera run`` on a small tmpfs, is in test_faults.py (it needs mount rights).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import Failure
from dagster._utils.error import serializable_error_info_from_exc_info

from orchestration.ops.alerts import disk_full_reason, reason_from_error

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")


def _stored(action) -> object:
    try:
        action()
    except Exception:  # noqa: BLE001 - the point is to capture it
        return serializable_error_info_from_exc_info(sys.exc_info())
    raise AssertionError("no error raised")


def _duckdb_write_to_full_disk():
    duckdb.connect().execute("COPY (SELECT range FROM range(100000)) TO '/dev/full' (FORMAT csv)")


def _python_write_to_full_disk():
    with open("/dev/full", "wb", buffering=0) as out:
        out.write(b"x" * 4096)


def _is_disk_full_line(line: str, write) -> None:
    # DuckDB names the file; a Python write() on an open file names none: the warehouse folder
    folder = os.environ["CARTERA_WAREHOUSE"]
    where = "writing /dev/full" if write is _duckdb_write_to_full_disk else f"in the warehouse folder {folder} ("
    assert line.startswith(f"disk full: no space left on device {where}"), line
    assert "free there now" in line and "free space on that filesystem" in line and "re-run" in line, line
    assert "\n" not in line


@pytest.fixture(autouse=True)
def _warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTERA_WAREHOUSE", str(tmp_path / "warehouse"))


@pytest.mark.parametrize("write", [_duckdb_write_to_full_disk, _python_write_to_full_disk])
def test_a_full_disk_is_named_even_behind_a_failing_rollback(write):
    """Ingest's pattern: the COMMIT fails, the ROLLBACK in ``except`` fails too, and the disk
    error survives only as the second error's context."""

    def commit_then_rollback():
        con = duckdb.connect()
        try:
            write()
        except Exception:  # noqa: BLE001
            con.execute("ROLLBACK")  # no transaction is active: raises, hiding the first error

    error = _stored(commit_then_rollback)
    assert "rollback" in error.message.lower()
    _is_disk_full_line(reason_from_error(error), write)


@pytest.mark.parametrize("write", [_duckdb_write_to_full_disk, _python_write_to_full_disk])
def test_a_full_disk_is_named_when_a_step_turned_it_into_a_failure(write):
    """The dbt step's pattern: ``only_transient_retries`` raises ``Failure(...) from exc``."""
    from orchestration.ops.retries import only_transient_retries

    def step():
        with only_transient_retries():
            write()

    error = _stored(step)
    assert error.cls_name == "Failure"
    _is_disk_full_line(reason_from_error(error), write)


def test_input_text_that_merely_mentions_a_full_disk_is_not_taken_for_one():
    error = _stored(lambda: (_ for _ in ()).throw(Failure(
        description="loans.csv: required column loan_id is missing from the header "
                    "(line 1: No space left on device)", allow_retries=False)))
    assert reason_from_error(error).startswith("loans.csv: required column loan_id"), reason_from_error(error)
    assert disk_full_reason("ValueError: bad row") is None


# ---- a failed dbt build is data unless it is transient --------------------------------------

def _dbt_step_attempts(dbt_error_text: str):
    """Run a one-asset job with the cartera step pattern (job retry policy, body in
    ``only_transient_retries``) whose body fails like dagster-dbt does; count attempts."""
    from dagster import Backoff, Definitions, RetryPolicy, asset, define_asset_job
    from dagster._core.test_utils import instance_for_test
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    from orchestration.ops.alerts import failure_from_events, stages_by_step
    from orchestration.ops.retries import only_transient_retries

    attempts = []

    @asset(group_name="transform")
    def models():
        attempts.append(1)
        with only_transient_retries():
            raise DagsterDbtCliRuntimeError(description=dbt_error_text)

    defs = Definitions(assets=[models], jobs=[define_asset_job(
        "j", op_retry_policy=RetryPolicy(max_retries=3, delay=0.01, backoff=Backoff.EXPONENTIAL))])
    with instance_for_test() as instance:
        result = defs.resolve_job_def("j").execute_in_process(instance=instance, raise_on_error=False)
    return len(attempts), failure_from_events(result.all_events, stages_by_step(defs))


def test_a_failing_dbt_test_is_not_retried_and_reads_as_its_errors():
    """dagster-dbt's error is a ``Failure`` that allows retries: before, every failed build
    (a failing data test included) ran dbt four times."""
    attempts, failure = _dbt_step_attempts(
        "The dbt CLI process with command\n\n`dbt build`\n\nfailed with exit code `1`.\n\n"
        "Errors parsed from dbt logs:\n\nFailure in test not_null_segment_assignments\n  Got 3 results")
    assert attempts == 1
    assert (failure.stage, failure.reason) == (
        "transform", "dbt: Failure in test not_null_segment_assignments Got 3 results")


def test_a_dbt_build_that_met_a_held_lock_is_retried():
    attempts, failure = _dbt_step_attempts(
        "Errors parsed from dbt logs:\n\nRuntime Error\n  IO Error: Could not set lock on file "
        '"/w/cartera.duckdb": Conflicting lock is held in python (PID 7)')
    assert attempts == 4 and failure.stage == "transform"
