"""Run business dates through the cartera job in this process -- the CLI's engine.

There is one code path: the Dagster job ``cartera_daily`` of ``orchestration.definitions``
(the same one the schedule, the landing sensor and the UI launch), executed with
``execute_in_process`` against the project's persistent instance, so every CLI run shows
up in ``make dev``. This module adds only what a terminal needs: live progress per stage
(from the instance's event stream) and a one-line failure reason.

``orchestration.definitions`` builds the warehouse resource from CARTERA_* variables when it
is imported: callers set them first (the CLI does).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from orchestration.ops.alerts import RunFailure, failure_from_events, stages_by_step
from orchestration.ops.instance import TAG_PROCESS, process_tag
from orchestration.ops.jobs import JOB_NAME, run_tags

STAGE_ORDER = ("ingest", "quality", "transform", "publish", "report")
OK, FAILED, WARN, RETRY = "✓", "✗", "⚠", "↻"
# Stages whose step evaluates the quality checks (the GX suites run inside ingest).
QUALITY_HOSTS = {"ingest"}


@dataclass
class RunOutcome:
    run_id: str
    start: str
    end: str
    success: bool
    seconds: float
    failure: RunFailure | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None  # everything dbt, GX and Dagster printed during the run


class StageProgress:
    """Turns Dagster events into ``ingest ✓ 3.1s  quality ✓  transform ✓ 4.0s ...``.

    A stage (asset group) is printed when its last step ends. Asset checks evaluated inside
    the ingest step are the quality stage and are printed right after ingest.
    """

    def __init__(self, stage_of_step: dict[str, str], steps: list[str], out: TextIO):
        self.stage_of_step = stage_of_step
        self.out = out
        self.remaining = Counter(stage_of_step.get(s, s) for s in steps)
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.checks: dict[str, list[tuple[bool, str]]] = {}
        self.printed: set[str] = set()

    def stage(self, step_key: str | None) -> str:
        return self.stage_of_step.get(step_key or "", step_key or "run")

    def _emit(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def __call__(self, entry) -> None:
        if not entry.is_dagster_event:
            return
        event = entry.get_dagster_event()
        kind = event.event_type_value
        stage = self.stage(event.step_key)
        now = entry.timestamp
        if kind == "STEP_START":
            self.started.setdefault(event.step_key, now)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            severity = getattr(getattr(data, "severity", None), "value", "ERROR")
            self.checks.setdefault(stage, []).append((bool(data.passed), severity))
        elif kind == "STEP_UP_FOR_RETRY":
            self._emit(f"{stage} {RETRY} retrying  ")
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            began = self.started.get(event.step_key, now)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + (now - began)
            self.remaining[stage] -= 1
            if kind == "STEP_FAILURE":
                self._print_stage(stage, failed=True, error=event.event_specific_data.error)
            elif self.remaining[stage] <= 0:
                self._print_stage(stage, failed=False)

    def _print_stage(self, stage: str, failed: bool, error=None) -> None:
        if stage in self.printed:
            return
        self.printed.add(stage)
        check_failed = error is not None and error.cls_name == "DagsterAssetCheckFailedError"
        # a blocking check that fails stops the step, but the step's own work succeeded
        mark = OK if check_failed or not failed else FAILED
        self._emit(f"{stage} {mark} {self.seconds.get(stage, 0.0):.1f}s  ")
        checks = self.checks.get(stage, [])
        if failed and not check_failed:
            return  # the step broke before its checks could say anything
        if stage in QUALITY_HOSTS and (checks or check_failed):
            warned = sum(1 for passed, severity in checks if not passed and severity == "WARN")
            quality = FAILED if check_failed else (f"{WARN} {warned} warning(s)" if warned else OK)
            self._emit(f"quality {quality}  ")
            self.printed.add("quality")


@contextmanager
def captured_output(log_path: Path) -> Iterator[TextIO]:
    """Send whatever is written to stdout/stderr (dbt's log, progress bars, Dagster's console,
    child processes) to ``log_path``; yield a stream to the real terminal for the progress."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()


def cli_log_path(run_id: str) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    return home / "cli_logs" / f"{run_id}.log"


def load_job():
    """The Definitions and the one job (imported here, after the environment is set)."""
    from orchestration.definitions import defs

    return defs, defs.resolve_job_def(JOB_NAME)


def execute(
    start: str,
    end: str | None = None,
    *,
    instance,
    launched_by: str = "cli",
    out: TextIO | None = None,
    label: str | None = None,
    debug: bool = False,
    extra_tags: dict[str, str] | None = None,
    run_id: str | None = None,
) -> RunOutcome:
    """Run ``start..end`` (one date when ``end`` is None) as ONE run of the cartera job."""
    from dagster._core.utils import make_new_run_id

    end = end or start
    defs, job = load_job()
    stage_of_step = stages_by_step(defs)
    steps = [node.name for node in job.graph.nodes]
    run_id = run_id or make_new_run_id()
    # the process identity lets the next look mark the run failed if this process is killed
    tags = {**run_tags(start, end, launched_by=launched_by), TAG_PROCESS: process_tag(), **(extra_tags or {})}
    run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if debug else "CRITICAL"}}}}
    log_path = None if debug else cli_log_path(run_id)

    from orchestration.config import resource_from_env

    with captured_output(log_path) if log_path else nullcontext(None) as terminal:
        stream = out or terminal or sys.stdout
        progress = StageProgress(stage_of_step, steps, stream)
        instance.add_event_listener(run_id, progress)
        stream.write(f"{label or (start if start == end else f'{start}..{end}')}  ")
        stream.flush()
        began = time.monotonic()
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            partition_key=start if start == end else None,
            raise_on_error=False,
            run_id=run_id,
            tags=tags,
            # the same resource definitions.py binds, rebuilt from the current environment so
            # a process that changes CARTERA_LANDING/WAREHOUSE after the import is honoured
            resources={"cartera": resource_from_env()},
        )
        seconds = time.monotonic() - began
        stream.write(f"({seconds:.1f}s)\n" if result.success else "\n")
        stream.flush()
    failure = None
    if not result.success:
        failure = failure_from_events(result.all_events, stage_of_step) or RunFailure(
            "run", "the run failed before any step started (see the Dagster UI)"
        )
    return RunOutcome(run_id, start, end, result.success, seconds, failure, dict(progress.seconds), log_path)

