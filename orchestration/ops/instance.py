"""The one persistent Dagster instance of a cartera checkout.

Runs started by the CLI, the schedule, the landing sensor and the UI all go to
``<project>/.dagster_home`` (the Makefile exports ``DAGSTER_HOME``; the CLI sets it when
unset), so ``make dev`` shows every run in one history. Runs whose process died (a
SIGKILLed ``cartera run``) are marked failed by whoever looks next: :func:`fail_abandoned_runs`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from orchestration.calendar import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"

# Written once when the folder has no dagster.yaml; an operator may edit it afterwards.
DAGSTER_YAML = """\
# Dagster instance settings for cartera (written by orchestration/ops/instance.py).
telemetry:
  enabled: false
# A failed date needs a person (data) or was already retried step by step (transient):
# never re-run a whole run automatically.
run_retries:
  enabled: false
# One writer on the DuckDB warehouse: runs launched by the schedule, the sensor or the UI
# wait in the queue until the previous one ends.
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project instance (unless set) and make sure it exists."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    return home


# ---- runs left behind by a process that died -------------------------------------------
#
# ``cartera run`` executes the job inside its own process. Killed with SIGKILL (or the
# machine going down) it cannot write the run's end, so the run would stay STARTED in the
# instance for ever -- and the schedule and the landing sensor, which launch nothing while a
# run is in progress, would wait for ever too. Every in-process run therefore carries the
# identity of the process executing it; whoever looks next (the next ``cartera run``,
# ``cartera status``, the sensor's or the schedule's tick) marks such a run failed when that
# process is gone.

TAG_PROCESS = "cartera/process"  # "<host> <pid> <boot id> <process start ticks>"
TAG_ABANDONED = "cartera/abandoned"  # the reason written when the run was marked failed


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return None


def _boot_id() -> str:
    """Changes at every boot (Linux); '-' where unknown."""
    return _read("/proc/sys/kernel/random/boot_id") or "-"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start ticks since boot) of ``pid`` from /proc, or None when not readable."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    return fields[0], fields[19]  # stat fields 3 (state) and 22 (starttime)


def process_tag(pid: int | None = None) -> str:
    """The identity of a process as :data:`TAG_PROCESS` records it (this one by default).

    Host and pid alone could match a later, unrelated process: the boot id and the start
    time make the identity unique on a machine."""
    import socket

    pid = pid or os.getpid()
    stat = _proc_stat(pid)
    return f"{socket.gethostname()} {pid} {_boot_id()} {stat[1] if stat else '-'}"


def process_gone(tag: str) -> bool | None:
    """True when the process a :data:`TAG_PROCESS` value names no longer exists, False when
    it (still) runs, None when this machine cannot tell (another host, malformed tag)."""
    import socket

    parts = tag.split()
    if len(parts) != 4 or not parts[1].isdigit() or parts[0] != socket.gethostname():
        return None
    _, pid_text, boot, ticks = parts
    pid = int(pid_text)
    if boot != "-" and boot != _boot_id():
        return True  # the machine restarted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    stat = _proc_stat(pid)
    if stat and (stat[0] in ("Z", "X") or (ticks != "-" and stat[1] != ticks)):
        return True  # a zombie, or the pid now belongs to a newer process
    return False


def fail_abandoned_runs(instance) -> list[str]:
    """Mark failed every cartera run still queued/running whose process is gone.

    Returns one line per run marked (also stored on the run as :data:`TAG_ABANDONED` and as
    the message of its failure event, so the UI and ``cartera status`` show it)."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    from orchestration.ops.jobs import JOB_NAME, dates_of_run

    lines = []
    runs = instance.get_runs(
        filters=RunsFilter(job_name=JOB_NAME, statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=50
    )
    for run in runs:
        tag = run.tags.get(TAG_PROCESS)
        if not tag or not process_gone(tag):
            continue
        host, pid = tag.split()[:2]
        first, last = dates_of_run(dict(run.tags))
        rerun = f"cartera run --from {first} --to {last or first}" if first else "cartera run"
        reason = (
            f"run {run.run_id[:8]} ({first if first == last else f'{first}..{last}'}) was left "
            f"{run.status.value} by process {pid} on {host}, which no longer exists (killed, or "
            f"the machine stopped); marked failed at "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. The published state is the "
            f"last whole publish; re-run its date(s): {rerun}"
        )
        instance.add_run_tags(run.run_id, {TAG_ABANDONED: reason})
        instance.report_run_failed(instance.get_run_by_id(run.run_id), message=reason)
        lines.append(reason)
    return lines
