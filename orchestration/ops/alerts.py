"""Failure alerts: which date, which stage, why -- in one line, in the warehouse and the log.

Every failed run leaves
  * a row in ``audit.alerts`` (alert_at, as_of_date, run_id, stage, reason),
  * a log line ``ALERT <date> <stage>: <reason> (run <id>)``,
  * a ``failed: <stage>: <reason>`` row in ``audit.run_audit`` (on the run's first date)
    through publish's ``record_failed_run``, so ``cartera audit`` shows the attempt.

Runs launched by the daemon (schedule, sensor, UI) are reported by the run-failure sensor
in :mod:`orchestration.ops.sensors`; runs of ``cartera run`` are reported by the CLI
itself (Dagster's run-status sensors do not see in-process runs). Both call
:func:`report_run_failure`; a run is recorded once (the row is keyed by run id and stage).

The warehouse file admits one writer: these functions open it, write, and close at once,
retrying for a short while when a run holds the lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.ops.retries import is_transient

log = logging.getLogger("cartera.alerts")

ALERTS_DDL = (
    "create schema if not exists audit; "
    "create table if not exists audit.alerts ("
    " alert_at TIMESTAMP, as_of_date DATE, run_id VARCHAR, stage VARCHAR, reason VARCHAR)"
)

# Exception classes Dagster wraps around the user's error: the reason is in their cause.
_WRAPPERS = {
    "RetryRequestedFromPolicy",
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "DagsterResourceFunctionError",
    "DagsterExecutionInterruptedError",
}


# ---- warehouse access ------------------------------------------------------------------

def with_warehouse(cartera, action: Callable[[Any], Any], *, patience: float = 15.0, read_only=False):
    """Open the warehouse, run ``action(con)``, close; retry for up to ``patience`` seconds
    while another process holds the file."""
    con = _retry_locked(lambda: cartera.connect(read_only=read_only), patience)
    try:
        return action(con)
    finally:
        con.close()


def record_alert(cartera, *, run_id: str | None, as_of_date: str | None, stage: str,
                 reason: str, logger: logging.Logger | Any | None = None,
                 patience: float = 15.0) -> None:
    """Write one alert row (replacing an earlier one for the same run and stage) and log it."""
    reason = " ".join(str(reason).split())
    line = f"ALERT {as_of_date or '-'} {stage}: {reason}" + (f" (run {run_id})" if run_id else "")
    (logger or log).error(line)

    def write(con):
        con.execute(ALERTS_DDL)
        if run_id:
            con.execute("delete from audit.alerts where run_id = ? and stage = ?", [run_id, stage])
        con.execute(
            "insert into audit.alerts values (?, ?, ?, ?, ?)",
            [dt.datetime.now(), as_of_date, run_id, stage, reason],
        )

    with_warehouse(cartera, write, patience=patience)


def report_run_failure(cartera, *, run_id: str, dates: Iterable[str], stage: str, reason: str,
                       logger=None, started_at: dt.datetime | None = None,
                       patience: float = 15.0) -> None:
    """Alert for a failed run and record its failed attempt in run_audit.

    ``patience``: seconds to wait for a warehouse lock (a dbt process that outlives its
    failed step may hold the file a little longer).
    """
    dates = sorted(set(dates))
    first = dates[0] if dates else None
    shown = reason if len(dates) <= 1 else f"{reason} (run over {dates[0]}..{dates[-1]})"
    record_alert(cartera, run_id=run_id, as_of_date=first, stage=stage, reason=shown, logger=logger,
                 patience=patience)
    if first is None:
        return
    try:
        from orchestration.publish.audit import record_failed_run
    except ImportError:  # publish not installed in this checkout: the alert is still written
        return
    # One run_audit row, on the run's first date: each call re-swaps serving.duckdb, so a
    # failed year-long backfill must not cost a year of copies.
    _retry_locked(lambda: record_failed_run(cartera, run_id, first, stage, shown, started_at=started_at),
                  patience)


def run_started_at(instance, run_id: str) -> dt.datetime | None:
    """When the run started (UTC, naive, as run_audit stores it), if the instance knows."""
    record = instance.get_run_record_by_id(run_id)
    if record is None or not record.start_time:
        return None
    return dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc).replace(tzinfo=None)


def _retry_locked(fn: Callable[[], Any], patience: float = 15.0):
    """Call ``fn``; on a transient error (a lock) wait 0.5 s, 1 s, 2 s ... up to ``patience``."""
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def read_alerts(cartera, limit: int = 5) -> list[tuple]:
    """Latest alerts, newest first (empty when the warehouse or the table does not exist)."""
    if not cartera.warehouse_db.exists():
        return []

    def read(con):
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'audit' and table_name = 'alerts'"
        ).fetchone()[0]
        if not exists:
            return []
        return con.execute(
            "select alert_at, as_of_date, run_id, stage, reason from audit.alerts "
            "order by alert_at desc, rowid desc limit ?",
            [limit],
        ).fetchall()

    return with_warehouse(cartera, read, read_only=True, patience=2.0)


# ---- what failed, from a run's events ------------------------------------------------------

@dataclass(frozen=True)
class RunFailure:
    stage: str  # ingest, quality, transform, publish, report (or the step key)
    reason: str  # one line
    step_key: str | None = None


def stages_by_step(defs) -> dict[str, str]:
    """Step key (= op name) -> stage (= asset group) for every asset op of ``defs``."""
    stages: dict[str, str] = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        groups = sorted(set(assets_def.group_names_by_key.values()))
        if groups:
            stages[assets_def.node_def.name] = groups[0] if len(groups) == 1 else "/".join(groups)
        elif assets_def.check_keys:
            stages[assets_def.node_def.name] = "quality"
    return stages


# How a full disk reads, whoever hit it: Python (OSError errno 28), DuckDB, dbt's log.
DISK_FULL_MARKERS = ("no space left on device", "[errno 28]")
_QUOTED_PATH = re.compile(r"""["'](/[^"']+)["']""")
_WRITTEN_PATH = re.compile(r"""-> ["'](/[^"']+)["']""")


def disk_full_reason(text: str) -> str | None:
    """The one actionable line for a full disk, when ``text`` reports one (else None).

    The raw messages name a temporary file deep inside a wrapper's message (or no file at
    all: a failed COMMIT); this line names the file, how much is free there now and what to
    do. Nothing is lost by failing: each stage writes in a transaction or aside and swaps."""
    if not any(marker in text.lower() for marker in DISK_FULL_MARKERS):
        return None
    match = _WRITTEN_PATH.search(text) or _QUOTED_PATH.search(text)  # copy 'a' -> 'b': b
    if match:
        path, where = Path(match.group(1)), f" writing {match.group(1)}"
    else:  # a write() on an open file names no file: name the folder the pipeline writes
        from orchestration.config import resource_from_env

        path = resource_from_env().warehouse_path
        where = f" in the warehouse folder {path}"
    probe = next((p for p in (path, *path.parents) if p.exists()), None)
    free = f" ({shutil.disk_usage(probe).free / 1e6:,.1f} MB free there now)" if probe else ""
    return (
        f"disk full: no space left on device{where}{free}; free space on that filesystem "
        "(or point --warehouse / CARTERA_WAREHOUSE at a bigger disk), then re-run the same "
        "date(s); nothing was left half-written"
    )


def _error_texts(error) -> Iterable[str]:
    """Messages of a SerializableErrorInfo and of its causes and contexts (an error raised
    while handling another -- e.g. a ROLLBACK after a failed COMMIT -- hides the first).

    A ``Failure``'s own description is skipped: it may quote input data (a header line), and
    a Failure made from an exception keeps that exception as its cause."""
    seen = 0
    stack = [error]
    while stack and seen < 20:
        err = stack.pop()
        if err is None:
            continue
        seen += 1
        if err.cls_name != "Failure":
            yield err.message or ""
        stack.extend([getattr(err, "context", None), err.cause])


def reason_from_error(error) -> str:
    """One line from a SerializableErrorInfo: the user's Failure description or first line."""
    if error is not None:
        full = disk_full_reason(" | ".join(_error_texts(error)))
        if full:
            return full
    while error is not None and error.cls_name in _WRAPPERS and error.cause is not None:
        error = error.cause
    if error is None:
        return "unknown error"
    message = (error.message or "").strip()
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        message = rest if error.cls_name == "Failure" else f"{error.cls_name}: {rest}"
    if error.cls_name != "Failure":
        message = message.splitlines()[0] if message else error.cls_name
    message = " ".join(message.split())
    return message if len(message) <= 500 else message[:499] + "…"


def failure_from_events(events: Iterable, stages: dict[str, str]) -> RunFailure | None:
    """The first failed step of a run, as (stage, one-line reason).

    A blocking asset check that fails stops its step with DagsterAssetCheckFailedError: the
    stage is then ``quality`` and the reason is the failed checks' descriptions.
    """
    events = [e for e in events if e is not None]
    failed_checks: dict[str | None, list[str]] = {}
    for event in events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                text = f"{data.check_name}: {data.description}" if data.description else data.check_name
                failed_checks.setdefault(event.step_key, []).append(text)
    for event in events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        step = event.step_key
        stage = stages.get(step or "", step or "run")
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            checks = failed_checks.get(step) or [reason_from_error(error)]
            return RunFailure("quality", "; ".join(checks), step)
        return RunFailure(stage, reason_from_error(error), step)
    for event in events:
        if event.event_type_value in ("PIPELINE_FAILURE", "RUN_FAILURE"):
            data = event.event_specific_data
            error = getattr(data, "error", None)
            reason = reason_from_error(error) if error else (event.message or "run failed")
            return RunFailure("run", " ".join(reason.split()), None)
    return None
