"""Faults through the real ``cartera`` command: kills, broken files, re-deliveries, order, locks,
a full disk. After each, the serving file is a whole previous state (every row checksummed)
and the next run recovers by itself or the message says what a person must do.

One landing (300 loans; business dates 2026-03-02 and 03-03) and ONE baseline warehouse
(both published by one ranged run) are generated per module; each test works on a
copy of the baseline with its own Dagster home.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from cli_helpers import PROJECT, cartera, ok, one_line_error
from pipeline_state import (DATA_TABLES, DAY1, DAY2, PII_KEY, checksum, copy_warehouse, env_for, fill_disk, kill,
                            resize_disk, small_disk, stage_checksums, start, step_events, used_mb, wait_for)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    env = env_for(tmp)
    landing = tmp / "landing"
    ok(cartera("generate", "--out", landing, "--loans", 300, "--days", 2, "--start", DAY1, "--seed", 21, env=env))
    assert sorted(p.name for p in landing.iterdir() if p.is_dir()) == [DAY1, DAY2]
    run = cartera("run", "--landing", landing, "--warehouse", tmp / "base", "--from", DAY1, "--to", DAY2,
                  "--bulk", env=env)
    ok(run)
    serving = tmp / "base" / "serving.duckdb"
    return {"tmp": tmp, "landing": landing, "warehouse": tmp / "base", "env": env, "run": run,
            "state": checksum(serving), "data": checksum(serving, DATA_TABLES)}


def _workspace(base, name: str):
    tmp = base["tmp"] / name
    tmp.mkdir()
    warehouse = copy_warehouse(base["warehouse"], tmp / "warehouse")
    return tmp, warehouse, env_for(tmp)


def _run_day(landing, warehouse, day, env, *extra):
    return cartera("run", "--landing", landing, "--warehouse", warehouse, "--from", day, "--to", day, *extra,
                   env=env)


@pytest.mark.slow
def test_sigkill_during_ingest_dbt_and_publish_changes_nothing_and_the_next_run_recovers(base):
    tmp, warehouse, env = _workspace(base, "kills")
    home = tmp / "dagster_home"
    args = ["run", "--landing", base["landing"], "--warehouse", warehouse, "--from", DAY2, "--to", DAY2]
    killed = []  # each killed run stays STARTED: nobody was left to say it ended ...
    for step in ("ingest_drops", "cartera_dbt_models"):
        proc = start(args, env)
        wait_for(lambda: "STEP_START" in step_events(home).get(step, ()), 240, f"{step} to start", proc)
        if step == "cartera_dbt_models":
            wait_for(lambda: list((PROJECT / "dbt_project" / "target").glob("*")) and True, 5, "dbt", proc)
        kill(proc)
        events = step_events(home)[step]
        assert "STEP_SUCCESS" not in events and "STEP_FAILURE" not in events, (step, events)  # killed mid-step
        assert checksum(warehouse / "serving.duckdb") == base["state"], f"serving changed by a kill in {step}"
        killed.append(_runs(home)[0])
        assert killed[-1].status.value == "STARTED"
    marker = tmp / "paused"
    proc = start(args, {**env, "CARTERA_TEST_PAUSE_BEFORE_SWAP": str(marker)})
    wait_for(marker.exists, 300, "publish to reach the swap", proc)
    kill(proc)
    assert checksum(warehouse / "serving.duckdb") == base["state"], "serving changed by a kill in publish"
    killed.append(_runs(home)[0])
    # ... until the next `cartera run` starts and marks it failed (it would block the sensor)
    assert [r.status.value for r in _runs(home)] == ["STARTED", "FAILURE", "FAILURE"]
    assert all("cartera/abandoned" in r.tags for r in _runs(home)[1:])

    # the next run recovers by itself: same rows as before (re-running a date is idempotent),
    # after marking the last killed run failed
    out = ok(_run_day(base["landing"], warehouse, DAY2, env))
    assert "publish ✓" in out
    assert f"note: run {killed[-1].run_id[:8]} ({DAY2}) was left STARTED by process" in out, out
    after = {r.run_id: r for r in _runs(home)}
    assert {after[r.run_id].status.value for r in killed} == {"FAILURE"}
    assert not _in_progress(home)
    assert checksum(warehouse / "serving.duckdb", DATA_TABLES) == base["data"]
    assert not list(warehouse.glob(".publish-staging-*")), "leftovers of the killed publish remain"
    con = duckdb.connect(str(warehouse / "serving.duckdb"), read_only=True)
    dupes = con.execute("SELECT count(*) FROM (SELECT as_of_date, loan_id FROM segment_assignments "
                        "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    outcomes = con.execute("SELECT outcome, count(*) FROM run_audit WHERE as_of_date = ? GROUP BY 1",
                           [DAY2]).fetchall()
    con.close()
    assert dupes == 0
    assert dict(outcomes) == {"published": 2}, outcomes  # the baseline and the recovery; kills left no row


def _runs(home):
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        return instance.get_runs()


def _in_progress(home):
    """What the landing sensor and the schedule ask before launching (it marks dead runs failed)."""
    from dagster import DagsterInstance

    from orchestration.ops.schedules import in_progress_runs

    with DagsterInstance.from_config(str(home)) as instance:
        return in_progress_runs(instance)


def test_a_killed_run_is_marked_failed_when_the_sensor_looks_and_status_says_why(base):
    """SIGKILL leaves the run STARTED in the Dagster instance; the sensor's and schedule's
    check for a run in progress marks it failed instead of waiting for ever."""
    tmp, warehouse, env = _workspace(base, "abandoned")
    home = tmp / "dagster_home"
    proc = start(["run", "--landing", base["landing"], "--warehouse", warehouse, "--from", DAY2, "--to", DAY2],
                 env)
    wait_for(lambda: "STEP_START" in step_events(home).get("ingest_drops", ()), 240, "ingest to start", proc)
    kill(proc)
    [run] = _runs(home)
    assert run.status.value == "STARTED"
    assert run.tags["cartera/process"].split()[1] == str(proc.pid)

    assert _in_progress(home) == []  # the sensor would launch again
    [run] = _runs(home)
    assert run.status.value == "FAILURE"
    reason = run.tags["cartera/abandoned"]
    assert f"run {run.run_id[:8]} ({DAY2}) was left STARTED by process {proc.pid} on " in reason, reason
    assert f"re-run its date(s): cartera run --from {DAY2} --to {DAY2}" in reason, reason

    out = ok(cartera("status", "--landing", base["landing"], "--warehouse", warehouse, env=env))
    assert f"last Dagster run {run.run_id[:8]} FAILURE ({DAY2}, by cli)" in out, out
    assert f"abandoned run   {reason}" in out, out
    assert checksum(warehouse / "serving.duckdb") == base["state"]


def test_truncated_gzip_is_refused_naming_the_file_and_nothing_changes(base):
    tmp, warehouse, env = _workspace(base, "gzip")
    landing = tmp / "landing"
    shutil.copytree(base["landing"] / DAY2, landing / DAY2)
    plain = landing / DAY2 / "loans.csv"
    packed = gzip.compress(plain.read_bytes())
    (landing / DAY2 / "loans.csv.gz").write_bytes(packed[: len(packed) // 2])
    plain.unlink()
    control = landing / DAY2 / "_control.csv"
    control.write_text(control.read_text().replace("loans.csv,", "loans.csv.gz,"))
    line = one_line_error(_run_day(landing, warehouse, DAY2, env))
    assert "loans.csv.gz" in line and DAY2 in line and "ingest" in line, line
    assert checksum(warehouse / "serving.duckdb") != base["state"]  # run_audit records the failure ...
    assert checksum(warehouse / "serving.duckdb", DATA_TABLES) == base["data"]  # ... the BI rows stay


def test_a_date_earlier_than_the_published_ones_is_refused_naming_the_range(base):
    tmp, warehouse, env = _workspace(base, "order")
    """Re-running 03-02 alone once 03-03 is published would leave 03-03 computed on stale history."""
    line = one_line_error(_run_day(base["landing"], warehouse, DAY1, env))
    assert f"cartera run --from {DAY1} --to {DAY2}" in line, line
    assert checksum(warehouse / "serving.duckdb", DATA_TABLES) == base["data"]


LOCK_RUN: dict[str, str] = {}

HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(600)
""")


def test_a_warehouse_locked_by_another_process_is_retried_then_named_without_damage(base):
    tmp, warehouse, env = _workspace(base, "lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse / "cartera.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = start(["run", "--landing", base["landing"], "--warehouse", warehouse, "--from", DAY2, "--to", DAY2],
                     env)
        assert proc.stdout.readline().startswith("running 1 date(s)")
        progress = proc.stdout.readline()  # the date's progress line ends when the run has ended
        LOCK_RUN["progress"] = progress
        assert "ingest ✗" in progress, progress
    finally:
        holder.kill()  # the operator closes the other program; the alert can now be written
        holder.wait()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("cartera: error:") and "ingest" in line and "lock" in line.lower(), err
    assert str(warehouse / "cartera.duckdb") in line, line
    assert checksum(warehouse / "serving.duckdb", DATA_TABLES) == base["data"]
    con = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)  # still a sound file
    assert con.execute("SELECT count(DISTINCT as_of_date) FROM raw.loans").fetchone()[0] == 2
    con.close()


@pytest.mark.slow
def test_a_date_redelivered_with_corrected_data_replaces_it(base):
    tmp, warehouse, env = _workspace(base, "corrected")
    landing = tmp / "landing"
    shutil.copytree(base["landing"] / DAY2, landing / DAY2)
    loans = landing / DAY2 / "loans.csv"
    lines = loans.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    first = lines[1].rstrip("\n").split(",")
    loan_id, dpd = first[header.index("loan_id")], header.index("days_past_due")
    first[dpd] = "400" if first[dpd] != "400" else "401"
    lines[1] = ",".join(first) + "\n"
    loans.write_text("".join(lines), encoding="utf-8")  # row count and control total unchanged
    ok(_run_day(landing, warehouse, DAY2, env))
    con = duckdb.connect(str(warehouse / "serving.duckdb"), read_only=True)
    rows = con.execute("SELECT dpd FROM segment_assignments WHERE as_of_date = ? AND loan_id = ?",
                       [DAY2, loan_id]).fetchall()
    counts = dict(con.execute("SELECT as_of_date::VARCHAR, count(*) FROM segment_assignments GROUP BY 1").fetchall())
    day1 = con.execute("SELECT * FROM segment_assignments WHERE as_of_date = ? ORDER BY ALL", [DAY1]).fetchall()
    con.close()
    assert rows == [(int(first[dpd]),)]
    base_con = duckdb.connect(str(base["warehouse"] / "serving.duckdb"), read_only=True)
    assert counts == dict(base_con.execute(
        "SELECT as_of_date::VARCHAR, count(*) FROM segment_assignments GROUP BY 1").fetchall())
    assert day1 == base_con.execute("SELECT * FROM segment_assignments WHERE as_of_date = ? ORDER BY ALL",
                                    [DAY1]).fetchall()
    base_con.close()


def test_a_held_warehouse_lock_is_retried_before_failing(base):
    progress = LOCK_RUN.get("progress", "")  # set by the lock test above (same module, runs first)
    assert "retrying" in progress, progress


@pytest.mark.slow
def test_a_bulk_rerun_of_the_published_range_changes_nothing(base):
    tmp, warehouse, env = _workspace(base, "bulk-again")
    ok(cartera("run", "--landing", base["landing"], "--warehouse", warehouse, "--from", DAY1, "--to", DAY2,
               "--bulk", env=env))
    assert checksum(warehouse / "serving.duckdb", DATA_TABLES) == base["data"]
    # every stage: raw, quarantine, intermediate, marts, restricted worklist, Parquet, CSV files
    assert stage_checksums(warehouse) == stage_checksums(base["warehouse"])


PADDING = "test_padding"  # a filler table in the serving file: stands for a long history


def _pad_serving(serving, rows: int) -> None:
    """Make the live serving file big (~50 bytes a row): publish copies it whole when no
    standby is usable, so a disk with room for ingest and dbt has none for the publish."""
    con = duckdb.connect(str(serving))
    con.execute(f"CREATE SCHEMA {PADDING}")
    con.execute(f"CREATE TABLE {PADDING}.filler AS SELECT md5(range::VARCHAR) || md5((-range)::VARCHAR) AS a, "
                f"hash(range) AS b FROM range({rows})")
    con.execute("CHECKPOINT")
    con.close()


def _disk_full_error(result, stage: str, disk) -> str:
    """The run fails with one actionable error line (a warning that the alert could not be
    written to the full warehouse may precede it)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"{stage} ↻" not in result.stdout, result.stdout  # a full disk is not retried
    lines = result.stderr.strip().splitlines()
    assert all(ln.startswith("cartera: warning: could not record the alert") for ln in lines[:-1]), lines
    line = lines[-1]
    assert line.startswith(f"cartera: error: {DAY2} failed at {stage}: disk full: no space left on device"), line
    assert f"writing {disk}/" in line and "free space on that filesystem" in line and "re-run" in line, line
    print(line)  # shown with -rP (docs/reliability.md quotes it)
    return line


@pytest.mark.slow
def test_a_full_disk_fails_ingest_dbt_or_publish_with_one_line_and_the_next_run_recovers(base):
    """The warehouse folder (pipeline warehouse, serving file, Parquet, worklists, reports:
    one filesystem by design, the swap is a rename) on a small tmpfs, filled up at three
    points: before the run (ingest's COMMIT fails), when dbt starts, and with room for
    ingest and dbt but not for publish's copy of the serving file."""
    tmp = base["tmp"] / "disk-full"
    env = env_for(tmp)
    home = tmp / "dagster_home"
    args = ["run", "--landing", base["landing"], "--warehouse", tmp / "disk", "--from", DAY2, "--to", DAY2]
    with small_disk(tmp / "disk", 400) as disk:
        shutil.copytree(base["warehouse"], disk, symlinks=True, dirs_exist_ok=True)
        serving = disk / "serving.duckdb"
        _pad_serving(serving, 900_000)  # ~45 MB
        before = checksum(serving, skip_schema=PADDING)
        assert before == base["state"]
        resize_disk(disk, int(used_mb(disk)) + 24)  # 24 MB free: ingest + dbt need ~4

        # 1. full before the run: ingest cannot commit (DuckDB's WAL)
        began = time.monotonic()
        filler = fill_disk(disk)
        _disk_full_error(cartera(*args, env=env), "ingest", disk)
        assert checksum(serving, skip_schema=PADDING) == before
        filler.unlink()
        print(f"ingest phase {time.monotonic() - began:.0f}s")

        # 2. full when dbt starts building
        proc = start(args, env)
        wait_for(lambda: "STEP_START" in step_events(home).get("cartera_dbt_models", ()), 240, "dbt", proc)
        filler = fill_disk(disk)
        out, err = proc.communicate(timeout=300)
        _disk_full_error(subprocess.CompletedProcess(args, proc.returncode, out, err), "transform", disk)
        assert checksum(serving, skip_schema=PADDING) == before
        filler.unlink()
        print(f"+ dbt phase {time.monotonic() - began:.0f}s")

        # 3. room for ingest and dbt, not for publish's copy of the serving file
        _disk_full_error(cartera(*args, env=env), "publish", disk)
        assert checksum(serving, skip_schema=PADDING) == before
        assert not list(disk.glob("serving.duckdb.tmp-*")), "a partial copy holds the space"

        print(f"+ publish phase {time.monotonic() - began:.0f}s")

        # more space: the next run recovers by itself, with the rows a clean run publishes
        resize_disk(disk, int(used_mb(disk)) + 200)
        ok(cartera(*args, env=env))
        print(f"+ recovery {time.monotonic() - began:.0f}s")
        assert checksum(serving, DATA_TABLES) == base["data"]
        assert not list(disk.glob(".publish-staging-*")) and not list(disk.glob("serving.duckdb.tmp-*"))
        con = duckdb.connect(str(disk / "cartera.duckdb"), read_only=True)
        assert con.execute("SELECT count(DISTINCT as_of_date) FROM raw.loans").fetchone()[0] == 2
        con.close()
        leaked = [p for p in _text_files(disk) if PII_KEY.encode() in p.read_bytes()]
        assert not leaked, leaked


def _text_files(root):
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "cartera.duckdb":  # the pipeline's own warehouse never leaves
            yield path


def test_the_pii_key_appears_in_no_output_log_run_storage_or_report(base):
    """Runs last in this module: every workspace above (kills, failures, re-runs) is scanned --
    serving files, Parquet, worklists, quality pages, reports, Dagster run and event storage,
    the CLI's captured logs -- plus the baseline run's stdout and stderr."""
    needle = PII_KEY.encode()
    scanned, hits = 0, []
    for path in _text_files(base["tmp"]):
        if path.is_relative_to(base["landing"]):
            continue
        data = path.read_bytes()
        scanned += 1
        if needle in data or needle in gzip_text(data):
            hits.append(str(path))
    assert scanned > 50 and any(p.name.endswith(".html") for p in _text_files(base["tmp"]))
    assert any("storage" in p.parts for p in _text_files(base["tmp"]))
    assert not hits, hits
    assert PII_KEY not in base["run"].stdout + base["run"].stderr


def gzip_text(data: bytes) -> bytes:
    try:
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else b""
    except Exception:  # noqa: BLE001 - a truncated test file
        return b""
