"""Readers never see a half-published date; a publish killed midway changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from publish_factory import DATES, build_warehouse
from orchestration.config import CarteraResource
from orchestration.publish.assets import publish_range
from orchestration.publish.serving import FAIL_ENV, PAUSE_ENV

PROJECT = Path(__file__).resolve().parents[2]

READER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    path, stop, out, expected_file = sys.argv[1:5]
    expected = json.load(open(expected_file))
    iterations, errors, violations, states = 0, [], [], []
    while not os.path.exists(stop):
        try:
            con = duckdb.connect(path, read_only=True)  # a swapped file is a new inode: reconnect
            a = dict(con.execute("SELECT as_of_date::VARCHAR, count(*) FROM segment_assignments GROUP BY 1").fetchall())
            s = dict(con.execute("SELECT as_of_date::VARCHAR, sum(loans)::BIGINT FROM segment_summary GROUP BY 1").fetchall())
            m = dict(con.execute("SELECT as_of_date::VARCHAR, sum(loans)::BIGINT FROM segment_migration "
                                 "WHERE to_segment <> 'SALIDA' GROUP BY 1").fetchall())
            r = {d for (d,) in con.execute("SELECT DISTINCT as_of_date::VARCHAR FROM run_audit "
                                           "WHERE outcome = 'published'").fetchall()}
            time.sleep(0.01)  # keep the file open a little while the publisher works
            con.close()
            if not (a == s == m) or set(a) != r or any(a[d] != expected[d] for d in a):
                violations.append({"assignments": a, "summary": s, "migration": m, "audit": sorted(r)})
            state = sorted(a)
            if not states or states[-1] != state:
                states.append(state)
        except Exception as exc:  # noqa: BLE001 - any error is a finding
            errors.append(repr(exc))
        iterations += 1
    json.dump({"iterations": iterations, "errors": errors[:5], "violations": violations[:5],
               "states": states}, open(out, "w"))
""")

# Holds one connection for the whole test. (In its own process: DuckDB shares one database
# instance per path inside a process, so a held connection would pin the old file for
# every "new" connection of the same process too.)
HOLDER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    path, stop, out = sys.argv[1:4]
    held = duckdb.connect(path, read_only=True)
    query = "SELECT count(DISTINCT as_of_date) FROM segment_assignments"
    before = held.execute(query).fetchone()[0]
    open(out + ".ready", "w").close()
    while not os.path.exists(stop):
        time.sleep(0.05)
    json.dump({"before": before, "after": held.execute(query).fetchone()[0]}, open(out, "w"))
""")


def _fingerprint(warehouse: Path) -> dict[str, str]:
    """sha256 of every published file (serving, Parquet, worklists)."""
    files = [warehouse / "serving.duckdb", *sorted((warehouse / "parquet").rglob("*.parquet")),
             *sorted((warehouse / "restricted").glob("*.csv"))]
    return {str(f.relative_to(warehouse)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _leftovers(warehouse: Path) -> list[str]:
    return sorted(p.name for p in warehouse.iterdir() if ".tmp-" in p.name or p.name.startswith(".publish-staging-"))


@pytest.mark.slow
def test_a_reader_process_never_errors_nor_sees_a_half_published_date(tmp_path, pii_key):
    dates = DATES + [DATES[-1].replace(day=DATES[-1].day + i) for i in (1, 2)]  # Mon..Fri
    wh = tmp_path / "warehouse"
    wh.mkdir()
    build_warehouse(wh / "cartera.duckdb", dates, loans=1500)
    cartera = CarteraResource(landing_dir=str(tmp_path), warehouse_dir=str(wh))
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    expected = {d.isoformat(): n for d, n in con.execute(
        "SELECT as_of_date, count(*) FROM marts.segment_assignments GROUP BY 1").fetchall()}
    con.close()
    (tmp_path / "expected.json").write_text(json.dumps(expected))

    publish_range(cartera, dates[0].isoformat(), dates[0].isoformat(), "run-0")
    stop, out, held = tmp_path / "stop", tmp_path / "reader.json", tmp_path / "holder.json"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cartera.serving_db), str(stop), str(held)])
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cartera.serving_db), str(stop), str(out),
                               str(tmp_path / "expected.json")])
    try:
        deadline = time.monotonic() + 60
        while not Path(str(held) + ".ready").exists():
            assert holder.poll() is None and time.monotonic() < deadline, "holder process did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # reader is looping too
        durations, methods = [], []
        for i, day in enumerate(dates[1:] + dates[:2], start=1):  # new dates, then two re-runs
            t0 = time.monotonic()
            methods.append(publish_range(cartera, day.isoformat(), day.isoformat(), f"run-{i}").serving_method)
            durations.append(time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        stop.touch()
        reader.wait(timeout=60)
        holder.wait(timeout=60)
    report = json.loads(out.read_text())
    print(f"reader: {report['iterations']} iterations, states {report['states']}; publish seconds {durations}; {methods}")
    assert report["errors"] == []
    assert report["violations"] == []
    assert report["iterations"] > 20
    assert len(report["states"]) >= 3, "the reader should have watched several publishes happen"
    assert report["states"][-1] == sorted(expected)
    # The connection held since the start kept its state (readers see new days on reconnect)
    # and never blocked the publisher.
    assert json.loads(held.read_text()) == {"before": 1, "after": 1}
    assert any("held by a reader" in m for m in methods)  # the held file was left alone
    assert max(durations) < 30


def test_an_injected_failure_before_the_swap_leaves_everything_as_it_was(cartera, monkeypatch):
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "ok-run")
    before = _fingerprint(cartera.warehouse_path)
    monkeypatch.setenv(FAIL_ENV, "1")
    with pytest.raises(RuntimeError, match="injected failure"):
        publish_range(cartera, DATES[1].isoformat(), DATES[1].isoformat(), "failing-run")
    assert _fingerprint(cartera.warehouse_path) == before
    assert _leftovers(cartera.warehouse_path) == []
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    assert con.execute("SELECT count(*) FROM audit.run_audit WHERE run_id = 'failing-run'").fetchone()[0] == 0
    con.close()

    monkeypatch.delenv(FAIL_ENV)
    publish_range(cartera, DATES[1].isoformat(), DATES[1].isoformat(), "next-run")
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert [r[0] for r in srv.execute("SELECT DISTINCT as_of_date FROM segment_assignments ORDER BY 1").fetchall()] \
        == DATES[:2]


def test_an_unreachable_postgres_fails_the_publish_before_any_file_changes(cartera, monkeypatch):
    from orchestration.publish.postgres import PostgresPublishError

    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "ok-run")
    before = _fingerprint(cartera.warehouse_path)
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", "host=127.0.0.1 port=1 dbname=x user=x password=hunter2-secret")
    with pytest.raises(PostgresPublishError) as err:
        publish_range(cartera, DATES[1].isoformat(), DATES[1].isoformat(), "pg-down")
    assert "cannot connect to PostgreSQL x@127.0.0.1:1/x" in str(err.value)
    assert "hunter2" not in str(err.value)
    assert _fingerprint(cartera.warehouse_path) == before
    assert _leftovers(cartera.warehouse_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("target", ["copy", "standby"])
def test_a_publish_killed_with_sigkill_before_the_swap_changes_nothing(cartera, tmp_path, target):
    """``copy``: the killed run wrote a new file (no standby yet); ``standby``: it had already
    committed the next state into the standby, which is therefore ahead of the live file."""
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "ok-0")
    killed = DATES[1:]
    if target == "standby":
        publish_range(cartera, DATES[1].isoformat(), DATES[1].isoformat(), "ok-1")
        killed = DATES[2:]
    before = _fingerprint(cartera.warehouse_path)
    marker = tmp_path / "paused"
    code = (
        "from orchestration.config import CarteraResource\n"
        "from orchestration.publish.assets import publish_range\n"
        f"c = CarteraResource(landing_dir={str(tmp_path)!r}, warehouse_dir={str(cartera.warehouse_path)!r})\n"
        f"publish_range(c, {killed[0].isoformat()!r}, {killed[-1].isoformat()!r}, 'killed-run')\n"
    )
    env = {**os.environ, PAUSE_ENV: str(marker), "PYTHONPATH": str(PROJECT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=PROJECT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the publishing process ended before reaching the swap"
            assert time.monotonic() < deadline, "the publishing process never reached the swap"
            time.sleep(0.05)
        # The next state, the staged Parquet files and worklists are fully written here.
        assert any(n.startswith(".publish-staging-") for n in _leftovers(cartera.warehouse_path))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _fingerprint(cartera.warehouse_path) == before
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert srv.execute("SELECT count(*) FROM run_audit WHERE run_id = 'killed-run'").fetchone()[0] == 0
    srv.close()

    result = publish_range(cartera, killed[0].isoformat(), killed[-1].isoformat(), "after-kill")
    assert result.dates == [d.isoformat() for d in killed]
    if target == "standby":  # the standby the killed run advanced is not trusted
        assert "standby not on the live file's lineage" in result.serving_method
    assert _leftovers(cartera.warehouse_path) == []
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert [r[0] for r in srv.execute("SELECT DISTINCT as_of_date FROM segment_assignments ORDER BY 1").fetchall()] \
        == DATES
    assert srv.execute("SELECT count(*) FROM run_audit").fetchone()[0] == len(DATES)
