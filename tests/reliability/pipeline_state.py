"""Test helper: one generated landing, a baseline warehouse, and checksums of published state.

``cartera`` runs as an operator starts it (a subprocess, its own Dagster home, the PII key
in the environment). The checksum covers every row of every table and view of the serving
file (or only the BI data tables, for idempotency, where ``run_audit`` and the publish log
rightly gain a row per run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from cli_helpers import PROJECT, cli_env

PII_KEY = "rel-pii-7Kq2xW9vLm4Zt8Rb3Np6Yd1Hc5Jf0Gs"  # unique enough to grep for
DAY1, DAY2 = "2026-03-02", "2026-03-03"  # Mon, Tue
DATA_TABLES = ("segment_assignments", "segment_summary", "segment_migration")


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp, CARTERA_PII_KEY=PII_KEY, **extra)


def start(args: list, env: dict) -> subprocess.Popen:
    """``cartera ARGS`` in its own process group (dbt runs as a child: a kill takes both)."""
    return subprocess.Popen([sys.executable, "-m", "orchestration.cli", *map(str, args)], cwd=PROJECT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def copy_warehouse(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def tables(con) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY 1, 2").fetchall()]


def checksum(serving: Path, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """{table: sha256 of its rows in a total order} for the serving file (read-only)."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        out = {}
        for name in tables(con):
            if only and name.split(".")[-1] not in only:
                continue
            rows = con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            out[name] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, poll: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended before {what}: {proc.returncode}\n{out}\n{err[-3000:]}")
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def step_events(dagster_home: Path) -> dict[str, set[str]]:
    """step key -> {STEP_START, STEP_SUCCESS, ...} of the latest run in that Dagster home."""
    # open the instance only once the CLI has created it (its captured log exists): two
    # processes creating the SQLite schema at once collide
    if not list((dagster_home / "cli_logs").glob("*.log")):
        return {}
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {}
        out: dict[str, set[str]] = {}
        for entry in instance.all_logs(runs[0].run_id):
            if entry.is_dagster_event and entry.dagster_event.step_key:
                out.setdefault(entry.dagster_event.step_key, set()).add(entry.dagster_event.event_type_value)
        return out
