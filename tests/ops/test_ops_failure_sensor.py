"""A daemon-launched run that fails leaves an alert and a failed run_audit row (real job)."""

from __future__ import annotations

import io

import duckdb
import pytest
from dagster import build_run_status_sensor_context
from dagster._core.test_utils import instance_for_test

from orchestration.config import CarteraResource
from orchestration.ops.runner import execute
from orchestration.ops.sensors import failure_alert_sensor

pytestmark = pytest.mark.slow


def test_failed_run_is_alerted_with_date_stage_and_reason(tmp_path, monkeypatch):
    from orchestration.simulate import generate_landing

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    (day,) = [d.isoformat() for d in generate_landing(landing, loans=60, days=1, seed=3)]
    loans = landing / day / "loans.csv"
    text = loans.read_text(encoding="utf-8")
    loans.write_text(text.replace("credit_type", "tipo_credito", 1), encoding="utf-8")  # header renamed
    monkeypatch.setenv("CARTERA_LANDING", str(landing))
    monkeypatch.setenv("CARTERA_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("CARTERA_PII_KEY", "k" * 32)
    resource = CarteraResource(landing_dir=str(landing), warehouse_dir=str(warehouse))

    with instance_for_test() as instance:
        outcome = execute(day, instance=instance, launched_by="sensor", out=io.StringIO())
        assert not outcome.success
        run = instance.get_run_by_id(outcome.run_id)
        failure_event = next(
            r.dagster_event for r in instance.all_logs(outcome.run_id)
            if r.is_dagster_event and r.dagster_event.event_type_value == "PIPELINE_FAILURE"
        )
        context = build_run_status_sensor_context(
            sensor_name="cartera_failure_alerts", dagster_event=failure_event,
            dagster_instance=instance, dagster_run=run, resources={"cartera": resource},
        ).for_run_failure()
        failure_alert_sensor(context)

    con = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)
    alerts = con.execute("select as_of_date::varchar, run_id, stage, reason from audit.alerts").fetchall()
    audit = con.execute("select outcome from audit.run_audit where run_id = ?", [outcome.run_id]).fetchall()
    con.close()
    assert len(alerts) == 1
    as_of_date, run_id, stage, reason = alerts[0]
    assert (as_of_date, run_id, stage) == (day, outcome.run_id, "ingest")
    assert "credit_type" in reason and "\n" not in reason
    assert reason == outcome.failure.reason
    assert audit == [(f"failed: ingest: {reason}",)]


def test_a_briefly_locked_warehouse_is_retried_not_failed(tmp_path, monkeypatch):
    """Another process holds cartera.duckdb when the run starts and lets go once the step
    that met the lock asked for a retry: TRANSIENT_RETRY_POLICY retries it, the run succeeds."""
    import subprocess
    import sys
    import textwrap

    from dagster._core.utils import make_new_run_id

    from orchestration.simulate import generate_landing

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    (day,) = [d.isoformat() for d in generate_landing(landing, loans=60, days=1, seed=4)]
    warehouse.mkdir()
    duckdb.connect(str(warehouse / "cartera.duckdb")).close()
    monkeypatch.setenv("CARTERA_LANDING", str(landing))
    monkeypatch.setenv("CARTERA_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("CARTERA_PII_KEY", "k" * 32)
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, os, time
            con = duckdb.connect({str(warehouse / 'cartera.duckdb')!r})
            print("locked", flush=True)
            deadline = time.time() + 120
            while not os.path.exists({str(release)!r}) and time.time() < deadline:
                time.sleep(0.1)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    retried = []

    def on_event(entry):
        if entry.is_dagster_event and entry.dagster_event.event_type_value == "STEP_UP_FOR_RETRY":
            retried.append(entry.dagster_event.step_key)
            release.touch()  # the lock goes away before the retry

    run_id = make_new_run_id()
    try:
        with instance_for_test() as instance:
            instance.add_event_listener(run_id, on_event)
            outcome = execute(day, instance=instance, launched_by="sensor", out=io.StringIO(), run_id=run_id)
    finally:
        holder.kill()
        holder.wait()
    assert retried, f"the step that met the lock was not retried: {outcome.failure}"
    assert outcome.success, outcome.failure
