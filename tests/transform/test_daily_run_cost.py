"""What a daily run leaves out to keep its fixed cost down -- and that it still catches bad data.

* Seeds (configuration) are loaded only when their files changed since the warehouse loaded
  them; their configuration tests run only then. A changed seed is picked up.
* Data tests on relations with ``as_of_date`` read only the run's dates
  (``dbt_project/macros/test_scoping.sql``): a bad row on an earlier date does not fail
  today's run, a bad row on the run's date still does.

Real dbt on a copy of the project (the small portfolio of ``test_marts``), with the exact
``dbt build`` arguments the Dagster asset uses (``dbt_build_args``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from orchestration.config import CarteraResource
from orchestration.transform import assets
from test_marts import DATES, DBT, copy_project, read, write_raw

pytestmark = pytest.mark.slow


def build(project: Path, db: Path, day: str, *, load_seeds: bool) -> tuple[int, dict[str, str], str]:
    """`dbt build` of one date as the asset runs it: (exit code, {unique_id: status}, output)."""
    args = [DBT, *assets.dbt_build_args(day, day, load_seeds=load_seeds),
            "--project-dir", str(project), "--profiles-dir", str(project)]
    env = {**os.environ, "CARTERA_DUCKDB_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1", **assets.dbt_date_env(day, day)}
    env.pop("CARTERA_DBT_TARGET", None)
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    return done.returncode, {r["unique_id"]: r["status"] for r in results}, done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    # The models' YAML carries no date filters of its own: only the project-wide scoping
    # (macros/test_scoping.sql) narrows the tests to the run's dates.
    project = copy_project(tmp_path_factory.mktemp("cost") / "project")
    for yml in (project.parent / "models").rglob("*.yml"):
        text = yml.read_text(encoding="utf-8")
        assert "var('start_date')" not in text and 'var(\"start_date\")' not in text, yml
    return project


@pytest.fixture(scope="module")
def loaded(project, tmp_path_factory) -> dict:
    """A warehouse after a first full build (seeds included) of the first date."""
    db = tmp_path_factory.mktemp("wh") / "cartera.duckdb"
    write_raw(db)
    code, statuses, out = build(project, db, DATES[0], load_seeds=True)
    assert code == 0, out
    return {"db": db, "statuses": statuses}


@pytest.fixture
def seeds_of(project, monkeypatch):
    """seeds_fingerprint / seeds_are_loaded look at the copied project, not the repository."""
    monkeypatch.setattr(assets, "SEEDS_DIR", project / "seeds")
    monkeypatch.setattr(assets, "DBT_PROJECT_DIR", project)
    monkeypatch.delenv("CARTERA_DBT_TARGET", raising=False)
    return project


def _copy_db(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / "cartera.duckdb"
    dst.write_bytes(src.read_bytes())
    return dst


def test_unchanged_seeds_are_skipped_with_their_configuration_tests_only(loaded, project, tmp_path):
    db = _copy_db(loaded["db"], tmp_path)
    code, statuses, out = build(project, db, DATES[1], load_seeds=False)
    assert code == 0, out
    full = loaded["statuses"]
    seeds = {u for u in full if u.startswith("seed.")}
    assert seeds and not seeds & statuses.keys()
    # configuration tests (attached to a seed) are left out ...
    manifest = json.loads((project / "target" / "manifest.json").read_text(encoding="utf-8"))
    attached = {u: n.get("attached_node") or "" for u, n in manifest["nodes"].items() if u.startswith("test.")}
    config_tests = {u for u in full if attached.get(u, "").startswith("seed.")}
    assert config_tests and not config_tests & statuses.keys()
    # ... every test of a model runs, including those that join a model to a seed
    data_tests = {u for u in full if u.startswith("test.") and u not in config_tests}
    assert data_tests <= statuses.keys()
    assert any(attached[u].startswith("model.") and "ref_credit_type_groups" in u for u in data_tests)
    assert {u for u in full if u.startswith("model.")} <= statuses.keys()
    assert all(s in ("success", "pass", "no-op") for s in statuses.values())


def test_the_seed_record_follows_the_seed_files(loaded, seeds_of, tmp_path):
    db = _copy_db(loaded["db"], tmp_path / "w")
    cartera = CarteraResource(landing_dir=str(tmp_path / "landing"), warehouse_dir=str(db.parent))
    before = assets.seeds_fingerprint()
    assert not assets.seeds_are_loaded(cartera, before)  # never recorded in this warehouse
    assets.record_seeds_loaded(cartera, before)
    assert assets.seeds_are_loaded(cartera, before)
    holidays = seeds_of / "seeds" / "pe_holidays.csv"
    original = holidays.read_bytes()
    try:
        holidays.write_bytes(original.rstrip(b"\n") + b"\n2026-01-06,Feriado de prueba\n")
        assert assets.seeds_fingerprint() != before
        assert not assets.seeds_are_loaded(cartera, assets.seeds_fingerprint())
    finally:
        holidays.write_bytes(original)
    assert assets.seeds_fingerprint() == before
    con = duckdb.connect(str(db))
    con.execute("drop table config.dpd_buckets")
    con.close()
    assert not assets.seeds_are_loaded(cartera, before)  # a seed table is missing: reload


def test_a_changed_seed_is_picked_up_by_the_next_run(loaded, project, seeds_of, tmp_path):
    """A new holiday on 2026-01-06 moves the next contact day of 2026-01-05's actions."""
    db = _copy_db(loaded["db"], tmp_path)
    cartera = CarteraResource(landing_dir=str(tmp_path / "landing"), warehouse_dir=str(db.parent))
    assets.record_seeds_loaded(cartera, assets.seeds_fingerprint())
    holidays = project / "seeds" / "pe_holidays.csv"
    original = holidays.read_bytes()
    try:
        holidays.write_bytes(original.rstrip(b"\n") + b"\n2026-01-06,Feriado de prueba\n")
        load = not assets.seeds_are_loaded(cartera, assets.seeds_fingerprint())
        assert load  # the run sees the change ...
        code, statuses, out = build(project, db, DATES[0], load_seeds=load)
        assert code == 0, out
        assert "seed.cartera.pe_holidays" in statuses
    finally:
        holidays.write_bytes(original)
    # ... and the day's contact plan uses the new calendar (Tue 01-06 is now a holiday)
    planned = {r["next_contact_date"].isoformat() for r in read(db, "marts.segment_assignments",
                                                                   f"as_of_date = '{DATES[0]}'")
               if r["next_contact_date"]}
    assert planned == {"2026-01-07"}


def test_data_tests_read_only_the_run_dates_and_still_fail_on_them(loaded, project, tmp_path):
    db = _copy_db(loaded["db"], tmp_path)
    # history is tested the day it is written: a duplicate left on an earlier date of the
    # incremental mart does not fail today's run (the test does not scan history) ...
    con = duckdb.connect(str(db))
    con.execute("insert into marts.segment_assignments select * from marts.segment_assignments "
                "where as_of_date = ? limit 1", [DATES[0]])
    con.close()
    code, statuses, out = build(project, db, DATES[1], load_seeds=False)
    assert code == 0, out
    by_name = {u.split(".")[2]: u for u in statuses if u.startswith("test.")}
    mart_test = by_name["unique_combination_of_columns_segment_assignments_as_of_date__loan_id"]
    stg_test = by_name["unique_combination_of_columns_stg_loans_as_of_date__loan_id"]
    assert statuses[mart_test] == statuses[stg_test] == "pass"
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    compiled = next(r["compiled_code"] for r in results if r["unique_id"] == mart_test)
    assert f"as_of_date between cast('{DATES[1]}' as date) and cast('{DATES[1]}' as date)" in compiled
    # ... but a duplicate on the run's date fails its test and the run (non-zero exit)
    con = duckdb.connect(str(db))
    con.execute("insert into raw.loans select * from raw.loans where as_of_date = ? limit 1", [DATES[1]])
    con.close()
    code, statuses, out = build(project, db, DATES[1], load_seeds=False)
    assert code != 0
    assert statuses[stg_test] == "fail", out


def test_the_next_date_reuses_the_saved_parse(loaded, project, tmp_path):
    """The run's dates reach dbt as environment variables, not --vars, so a new day does not
    throw away dbt's saved parse (a full re-parse costs ~3 s of every daily run), and the
    models still compile with the new day's dates. Nor does dbt re-parse the files that use
    the dates: dbt_project.yml reads the variables only when a node executes (dbt re-parses
    every file whose environment variables changed: 12 models, ~1.1 s a day)."""
    db = _copy_db(loaded["db"], tmp_path)
    code, _, out = build(project, db, DATES[0], load_seeds=False)  # new path: dbt may re-parse
    assert code == 0, out
    log = project / "logs" / "dbt.log"  # dbt's debug log, appended by every invocation
    before = log.stat().st_size
    code, statuses, out = build(project, db, DATES[1], load_seeds=False)
    assert code == 0, out
    assert "Unable to do partial parsing" not in out and "full parse" not in out.lower(), out[:3000]
    with log.open(encoding="utf-8") as fh:
        fh.seek(before)
        second = fh.read()
    assert "Partial parsing enabled, no changes found, skipping parsing" in second, \
        [line for line in second.splitlines() if "artial pars" in line]
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    compiled = next(r["compiled_code"] for r in results
                    if r["unique_id"] == "model.cartera.int_payment_history")
    assert f"'{DATES[1]}'" in compiled and f"'{DATES[0]}'" not in compiled


def test_one_not_null_test_per_model_counts_the_nulls_it_finds(loaded, project, tmp_path):
    """A model's NOT NULL columns are checked by one `not_null_columns` test (one query instead
    of one dbt node per column). It reads the run's dates, plus rows without a date wherever
    they are (a row without a date belongs to no run), and reports how many null values."""
    db = _copy_db(loaded["db"], tmp_path)
    con = duckdb.connect(str(db))
    # an earlier date's null is history: not today's test ...
    con.execute("update marts.segment_assignments set dpd = null, reason = null "
                "where as_of_date = ? and loan_id = (select min(loan_id) from marts.segment_assignments "
                "where as_of_date = ?)", [DATES[0], DATES[0]])
    # ... a row without a date is, and so is each of its null columns
    con.execute("insert into marts.segment_assignments select * replace (null as as_of_date, null as rule_id) "
                "from marts.segment_assignments where as_of_date = ? limit 1", [DATES[0]])
    con.close()
    code, statuses, out = build(project, db, DATES[1], load_seeds=False)
    assert code != 0
    test_id = next(u for u in statuses if u.split(".")[:3] == ["test", "cartera", "not_null_segment_assignments"])
    assert statuses[test_id] == "fail", out
    assert "Failure in test not_null_segment_assignments" in out and "Got 2 results" in out, out[-3000:]
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    result = next(r for r in results if r["unique_id"] == test_id)
    assert result["failures"] == 2
    assert f"as_of_date between cast('{DATES[1]}' as date) and cast('{DATES[1]}' as date) or as_of_date is null" \
        in result["compiled_code"]
    # every other model's test still passes: the failure is this model's alone
    failed = sorted(u for u, s in statuses.items() if s == "fail")
    assert failed == [test_id], failed
