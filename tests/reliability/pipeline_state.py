"""Test helper: one generated landing, a baseline warehouse, and checksums of published state.

``cartera`` runs as an operator starts it (a subprocess, its own Dagster home, the PII key
in the environment). The checksum covers every row of every table and view of the serving
file (or only the BI data tables, for idempotency, where ``run_audit`` and the publish log
rightly gain a row per run).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

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


def checksum(serving: Path, only: tuple[str, ...] | None = None, skip_schema: str | None = None) -> dict[str, str]:
    """{table: sha256 of its rows in a total order} for the serving file (read-only)."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        out = {}
        for name in tables(con):
            if only and name.split(".")[-1] not in only:
                continue
            if skip_schema and name.split(".")[0] == skip_schema:
                continue
            rows = con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            out[name] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


# What legitimately differs between two runs of the same inputs: who ran and when.
RUN_COLUMNS = {"run_id", "ingested_at", "loaded_at", "started_at", "ended_at", "published_at"}
PER_RUN_TABLES = {"raw.drops", "config.seed_state"}  # one row per run, by design (append-only log)


def stage_checksums(warehouse: Path) -> dict[str, str]:
    """Checksums of what every stage wrote, run identifiers and timestamps left out: each table
    of the pipeline warehouse (raw, quarantine, dbt's schemas, the restricted worklist; not
    the audit schema), every Parquet data table, every worklist CSV (bytes)."""
    out: dict[str, str] = {}
    con = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)
    try:
        for schema, table in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = "
                "current_database() AND table_schema <> 'audit' ORDER BY 1, 2").fetchall():
            if f"{schema}.{table}" in PER_RUN_TABLES:
                continue
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position", [schema, table]).fetchall() if c not in RUN_COLUMNS]
            rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{schema}"."{table}" '
                               "ORDER BY ALL").fetchall()
            out[f"warehouse:{schema}.{table}"] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
        for folder in sorted((warehouse / "parquet").iterdir()):
            if folder.name == "run_audit":
                continue
            rows = con.execute(f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true) "
                               "ORDER BY ALL").fetchall()
            out[f"parquet:{folder.name}"] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        con.close()
    for csv in sorted((warehouse / "restricted").glob("*.csv")):
        out[f"file:{csv.name}"] = hashlib.sha256(csv.read_bytes()).hexdigest()
    return out


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


# ---- a small disk -------------------------------------------------------------------------

@contextmanager
def small_disk(mountpoint: Path, size_mb: int):
    """A tmpfs of ``size_mb`` at ``mountpoint`` (root with CAP_SYS_ADMIN), unmounted after.

    Skips the test, saying why, where mounting is not permitted (an unprivileged container):
    a permission of the CI machine is not a defect of cartera."""
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("disk full is simulated with a tmpfs mount: needs Linux and mount(8)")
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs to simulate a full disk (needs root with CAP_SYS_ADMIN): "
                    + " ".join((mounted.stderr or mounted.stdout).split()))
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def resize_disk(mountpoint: Path, size_mb: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(mountpoint)], check=True,
                   capture_output=True)


def used_mb(mountpoint: Path) -> float:
    usage = shutil.disk_usage(mountpoint)
    return (usage.total - usage.free) / 2**20


def fill_disk(folder: Path) -> Path:
    """Write zeros into ``folder/filler`` until the filesystem refuses (ENOSPC)."""
    filler = folder / "filler"
    chunk = b"\0" * 2**20
    with open(filler, "ab", buffering=0) as out:
        for size in (2**20, 4096, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
