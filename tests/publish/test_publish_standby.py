"""The live/standby pair: a daily publish updates the previous live file in place.

After every publish, whatever path it took, the serving file must equal the marts for
the published dates (customer_id hashed), and the standby must be the previous state.
"""

from __future__ import annotations

import subprocess
import sys

import duckdb

from publish_factory import DATES, rederive
from orchestration.publish.assets import publish_range
from orchestration.publish.pii import customer_key
from orchestration.publish.serving import standby_path

TABLES = ["segment_assignments", "segment_summary", "segment_migration"]


def _publish(cartera, first, last=None, run_id="r"):
    return publish_range(cartera, first.isoformat(), (last or first).isoformat(), run_id)


def _state(path) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    state = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}
    con.close()
    return state


def _expected(cartera, key: bytes, dates) -> dict[str, list]:
    """What serving must hold, computed from the marts in Python (HMAC by hashlib)."""
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    out = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM marts.{table} WHERE as_of_date IN (SELECT unnest(?::DATE[]))",
                          [[d.isoformat() for d in dates]])
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if "customer_id" in cols:
            i = cols.index("customer_id")
            rows = [r[:i] + (customer_key(key, r[i]),) + r[i + 1:] for r in rows]
        out[table] = sorted(rows)
    con.close()
    return out


def test_daily_publishes_update_the_standby_in_place_and_stay_exact(cartera, pii_key):
    first = _publish(cartera, DATES[0], run_id="d0")
    assert first.serving_method == "new"
    second = _publish(cartera, DATES[1], run_id="d1")
    assert second.serving_method.startswith("copy") and "no standby yet" in second.serving_method
    assert _state(standby_path(cartera.serving_db)) == _expected(cartera, pii_key, DATES[:1])

    before = _state(cartera.serving_db)
    third = _publish(cartera, DATES[2], run_id="d2")
    assert third.serving_method == "standby updated in place (replayed 1 date(s))"
    assert _state(cartera.serving_db) == _expected(cartera, pii_key, DATES)
    assert _state(standby_path(cartera.serving_db)) == before  # the previous state, kept
    assert cartera.serving_db.stat().st_ino != standby_path(cartera.serving_db).stat().st_ino


def test_replaying_re_run_dates_and_new_columns_into_the_standby(cartera, pii_key):
    for i, day in enumerate(DATES):
        _publish(cartera, day, run_id=f"d{i}")
    wh = duckdb.connect(str(cartera.warehouse_db))
    wh.execute("ALTER TABLE marts.segment_assignments ADD COLUMN collection_score DOUBLE")
    wh.execute("UPDATE marts.segment_assignments SET collection_score = dpd / 10.0, "
               "reason = reason || ' [v2]' WHERE as_of_date = ?", [DATES[1]])
    wh.execute("DELETE FROM marts.segment_assignments WHERE as_of_date = ? AND segment_code = 'AL_DIA' "
               "AND loan_id LIKE '%3'", [DATES[1]])
    wh.close()
    rederive(cartera.warehouse_db)

    # Re-run of D1..D2 goes into the standby (state after D1), which lacks D2 and the column.
    rerun = _publish(cartera, DATES[1], DATES[2], run_id="rerun")
    assert rerun.serving_method.startswith("standby")
    assert _state(cartera.serving_db) == _expected(cartera, pii_key, DATES)
    # Next publish: the standby (state after D2) must get the re-run D1 and D2 from the live file.
    again = _publish(cartera, DATES[2], run_id="again")
    assert again.serving_method == "standby updated in place (replayed 2 date(s))"
    assert _state(cartera.serving_db) == _expected(cartera, pii_key, DATES)
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert srv.execute("SELECT count(collection_score) FROM segment_assignments WHERE as_of_date = ?",
                       [DATES[1]]).fetchone()[0] > 0
    gens = srv.execute("SELECT DISTINCT generation FROM cartera_meta.publish_log ORDER BY 1").fetchall()
    assert [g for (g,) in gens] == list(range(1, 6))


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM segment_assignments").fetchone()
print("holding", flush=True)
sys.stdin.readline()
"""


def test_a_standby_held_by_a_reader_is_left_alone(cartera, pii_key):
    _publish(cartera, DATES[0], run_id="d0")
    _publish(cartera, DATES[1], run_id="d1")
    # A BI session opened the file before the last swap and is still connected.
    reader = subprocess.Popen([sys.executable, "-c", HOLD, str(standby_path(cartera.serving_db))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        held_state = _state(standby_path(cartera.serving_db))
        result = _publish(cartera, DATES[2], run_id="d2")
        assert result.serving_method.startswith("copy") and "held by a reader" in result.serving_method
        assert _state(cartera.serving_db) == _expected(cartera, pii_key, DATES)
    finally:
        reader.stdin.write("\n")
        reader.stdin.flush()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    assert held_state == _expected(cartera, pii_key, DATES[:1])


def test_files_open_in_the_publishing_process_itself_are_not_written(cartera, pii_key):
    """Inside one process DuckDB refuses a write handle on a file already open (no lock
    can tell): the standby is then left alone too, and the live file is only read."""
    _publish(cartera, DATES[0], run_id="d0")
    _publish(cartera, DATES[1], run_id="d1")
    live = duckdb.connect(str(cartera.serving_db), read_only=True)
    standby = duckdb.connect(str(standby_path(cartera.serving_db)), read_only=True)
    try:
        result = _publish(cartera, DATES[2], run_id="d2")
        assert result.serving_method == "copy (standby held by a reader)"
        # Both connections still read the states they opened.
        assert live.execute("SELECT count(DISTINCT as_of_date) FROM segment_assignments").fetchone()[0] == 2
        assert standby.execute("SELECT count(DISTINCT as_of_date) FROM segment_assignments").fetchone()[0] == 1
    finally:
        live.close()
        standby.close()
    assert _state(cartera.serving_db) == _expected(cartera, pii_key, DATES)
