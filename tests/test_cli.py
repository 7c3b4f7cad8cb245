"""`cartera` end to end on fresh warehouses, the way an operator uses it.

One generated landing (250 loans, 6 business dates) is run twice: one run per date
(`cartera run`) and as ONE ranged run (`cartera run --bulk`); every published row must be
the same. Then `status`, `explain`, `audit`, a rejected drop, and the one-line errors.
Small on purpose: CI has 2 cores.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from cli_helpers import cartera, cli_env, ok, one_line_error

pytestmark = pytest.mark.slow

DATES = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"]  # Mon..Fri
EXTRA = "2026-03-09"  # generated, left pending
# run_audit columns that describe the run, not the data: they differ between any two runs
RUN_COLUMNS = {"run_id", "started_at", "ended_at", "code_version"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    env = cli_env(tmp)
    landing = tmp / "landing"
    generated = ok(cartera("generate", "--out", landing, "--loans", 250, "--days", 6,
                           "--start", DATES[0], "--seed", 11, env=env))
    daily = cartera("run", "--landing", landing, "--warehouse", tmp / "daily",
                    "--from", DATES[0], "--to", DATES[-1], env=env)
    bulk = cartera("run", "--landing", landing, "--warehouse", tmp / "bulk",
                   "--from", DATES[0], "--to", DATES[-1], "--bulk", env=env)
    chunked = cartera("run", "--landing", landing, "--warehouse", tmp / "chunked",
                      "--from", DATES[0], "--to", DATES[-1], "--bulk", "--chunk", 3, env=env)
    return {"tmp": tmp, "env": env, "landing": landing, "warehouse": tmp / "daily",
            "generated": generated, "run": daily, "bulk": bulk, "chunked": chunked}


def serving(pipeline, which: str = "daily"):
    return duckdb.connect(str(pipeline["tmp"] / which / "serving.duckdb"), read_only=True)


def published_rows(con, table: str) -> list[tuple]:
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_name = ? "
        "order by ordinal_position", [table]).fetchall() if c not in RUN_COLUMNS]
    select = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"select {select} from {table} order by all").fetchall()


def test_generate_writes_landing_folders(pipeline):
    assert f"wrote 6 landing folder(s) {DATES[0]}..{EXTRA}" in pipeline["generated"]
    for day in [*DATES, EXTRA]:
        assert (pipeline["landing"] / day / "_control.csv").is_file()


def test_run_shows_progress_per_date_and_stage(pipeline):
    out = ok(pipeline["run"])
    lines = {line.split()[0]: line for line in out.splitlines() if line[:4] == "2026"}
    assert sorted(lines) == DATES  # EXTRA is outside --to
    for line in lines.values():
        for stage in ("ingest ✓", "quality ✓", "transform ✓", "publish ✓", "report ✓"):
            assert stage in line, line
    assert "done: 5 date(s) published" in out


def test_bulk_backfill_is_one_ranged_run(pipeline):
    out = ok(pipeline["bulk"])
    assert f"{DATES[0]}..{DATES[-1]} (5 dates)  ingest ✓" in out
    ranged = ranged_runs(pipeline)  # the chunked backfill's runs share the instance
    assert ranged.count(((DATES[0], DATES[-1]), DagsterRunStatus.SUCCESS)) == 1


def ranged_runs(pipeline) -> list[tuple[tuple[str, str], DagsterRunStatus]]:
    instance = DagsterInstance.from_config(str(pipeline["tmp"] / "dagster_home"))
    return [((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]),
             r.status) for r in instance.get_runs(filters=RunsFilter(job_name="cartera_daily"))
            if r.tags.get("dagster/asset_partition_range_start")]


def test_a_chunked_backfill_runs_ranges_of_at_most_n_dates_in_order(pipeline):
    out = ok(pipeline["chunked"])
    assert "(ranged runs of up to 3 dates)" in out
    ranges = [line.split("  ")[0] for line in out.splitlines() if line[:4] == "2026"]
    assert ranges == [f"{DATES[0]}..{DATES[2]} (3 dates)", f"{DATES[3]}..{DATES[4]} (2 dates)"]
    ranged = ranged_runs(pipeline)
    for span in ((DATES[0], DATES[2]), (DATES[3], DATES[4])):
        assert ranged.count((span, DagsterRunStatus.SUCCESS)) == 1
    assert "done: 5 date(s) published" in out


@pytest.mark.parametrize("which", ["bulk", "chunked"])
def test_bulk_backfill_publishes_exactly_what_daily_runs_publish(pipeline, which):
    ok(pipeline["run"]), ok(pipeline[which])
    daily, bulk = serving(pipeline, "daily"), serving(pipeline, which)
    tables = sorted(t for (t,) in daily.execute(
        "select table_name from information_schema.tables where table_schema = 'main'").fetchall())
    assert {"segment_assignments", "segment_summary", "segment_migration", "run_audit"} <= set(tables)
    for table in tables:
        expected = published_rows(daily, table)
        assert expected, f"{table} is empty"
        assert published_rows(bulk, table) == expected, f"{table} differs between {which} and daily runs"
    dates = daily.execute("select distinct as_of_date::varchar from segment_assignments order by 1").fetchall()
    assert [d for (d,) in dates] == DATES
    daily.close(), bulk.close()


def test_runs_are_in_the_project_instance_with_date_and_rulebook_tags(pipeline):
    ok(pipeline["run"])
    con = serving(pipeline)
    audit = dict(con.execute("select as_of_date::varchar, rulebook_version from run_audit "
                             "where outcome = 'published'").fetchall())
    con.close()
    instance = DagsterInstance.from_config(str(pipeline["tmp"] / "dagster_home"))
    runs = [r for r in instance.get_runs(filters=RunsFilter(job_name="cartera_daily"))
            if "dagster/partition" in r.tags]
    by_date = {r.tags["cartera/as_of_date"]: r for r in runs}
    assert sorted(by_date) == DATES
    for day, run in by_date.items():
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == day
        assert run.tags["cartera/launched_by"] == "cli"
        assert run.tags["cartera/rulebook_version"] == audit[day]


def test_status_reports_processed_published_and_pending(pipeline):
    ok(pipeline["run"])
    out = ok(cartera("status", "--landing", pipeline["landing"], "--warehouse", pipeline["warehouse"],
                     env=pipeline["env"]))
    assert f"last processed  {DATES[-1]}" in out
    assert f"last published  {DATES[-1]} (5 date(s))" in out
    assert f"pending         1: {EXTRA}" in out
    assert f"next            {EXTRA} is complete and next in date order" in out
    assert "last failure    none" in out


def test_explain_names_the_loan_its_rule_and_strategy(pipeline):
    ok(pipeline["run"])
    con = serving(pipeline)
    loan_id, segment, rule_id, strategy = con.execute(
        "select loan_id, segment_code, rule_id, strategy_code from segment_assignments "
        "where as_of_date = ? and segment_code <> 'AL_DIA' order by balance_pen desc limit 1",
        [DATES[-1]],
    ).fetchone()
    con.close()
    out = ok(cartera("explain", loan_id, "--date", DATES[-1], "--warehouse", pipeline["warehouse"],
                     env=pipeline["env"]))
    for expected in (loan_id, segment, rule_id, strategy):
        assert expected in out


def test_audit_shows_the_run_files_and_outcome(pipeline):
    ok(pipeline["run"])
    con = serving(pipeline)
    run_id, rows = con.execute("select run_id, rows_published from run_audit where as_of_date = ? "
                               "and outcome = 'published'", [DATES[1]]).fetchone()
    con.close()
    out = ok(cartera("audit", "--date", DATES[1], "--warehouse", pipeline["warehouse"], env=pipeline["env"]))
    assert run_id in out and "published" in out
    assert f"{rows:,}" in out and "loans.csv" in out and "sha256" in out


def test_a_bad_drop_fails_with_date_stage_and_reason_then_status_shows_it(pipeline):
    ok(pipeline["run"])
    landing, warehouse, env = pipeline["landing"], pipeline["warehouse"], pipeline["env"]
    bad_landing = pipeline["tmp"] / "bad_landing"
    shutil.copytree(landing / EXTRA, bad_landing / EXTRA)
    loans = bad_landing / EXTRA / "loans.csv"
    header, *rows = loans.read_text(encoding="utf-8").splitlines()
    columns = header.split(",")
    drop = columns.index("credit_type")  # a required column disappears
    loans.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop)
                               for line in [header, *rows]) + "\n", encoding="utf-8")

    error = one_line_error(cartera("run", "--landing", bad_landing, "--warehouse", warehouse,
                                   "--from", EXTRA, "--to", EXTRA, env=env))
    assert error.startswith(f"cartera: error: {EXTRA} failed at ingest:")
    assert "credit_type" in error and "loans.csv" in error

    out = ok(cartera("status", "--landing", bad_landing, "--warehouse", warehouse, env=env))
    assert f"last failure    {EXTRA} at ingest:" in out and "credit_type" in out
    audit = ok(cartera("audit", "--date", EXTRA, "--warehouse", warehouse, env=env))
    assert "failed: ingest:" in audit
    con = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)
    (stage, reason), = con.execute("select stage, reason from audit.alerts where as_of_date = ?", [EXTRA]).fetchall()
    con.close()
    assert stage == "ingest" and "credit_type" in reason
    # the published state is untouched
    con = serving(pipeline)
    assert con.execute("select max(as_of_date)::varchar from segment_assignments").fetchone()[0] == DATES[-1]
    con.close()


def test_run_without_the_pii_key_names_it(tmp_path):
    env = cli_env(tmp_path)
    del env["CARTERA_PII_KEY"]
    error = one_line_error(cartera("run", "--landing", tmp_path, "--warehouse", tmp_path / "w",
                                   "--from", "2026-01-05", "--to", "2026-01-05", env=env, timeout=120))
    assert "CARTERA_PII_KEY" in error


@pytest.mark.parametrize("args, expected", [
    (["run", "--from", "2026-1-5", "--to", "2026-01-06"], "bad date '2026-1-5': expected YYYY-MM-DD"),
    (["run", "--from", "2026-02-30", "--to", "2026-03-01"], "bad date '2026-02-30': no such day"),
    (["explain", "L1", "--date", "05/01/2026"], "expected YYYY-MM-DD"),
    (["run", "--from", "2026-01-06", "--to", "2026-01-05"], "--to 2026-01-05 is before --from 2026-01-06"),
    (["run", "--from", "2026-01-05", "--to", "2026-01-06"], "no landing folders dated 2026-01-05..2026-01-06"),
    (["run", "--from", "2026-01-05", "--to", "2026-01-06", "--bulk", "--chunk", "0"], "'0' must be 1 or more"),
    (["run", "--from", "2026-01-05", "--to", "2026-01-06", "--chunk", "2"], "--chunk splits a --bulk run"),
])
def test_bad_arguments_give_one_line(tmp_path, args, expected):
    (tmp_path / "landing").mkdir()
    result = cartera(*args, "--landing", tmp_path / "landing", "--warehouse", tmp_path / "w",
                     env=cli_env(tmp_path), timeout=120) if args[0] == "run" else \
        cartera(*args, env=cli_env(tmp_path), timeout=120)
    assert expected in one_line_error(result)


def test_prepare_and_docs(tmp_path):
    env = cli_env(tmp_path)
    out = ok(cartera("prepare", env=env, timeout=300))
    assert "rulebook version v" in out and "manifest.json" in out
    assert (tmp_path / "dagster_home" / "dagster.yaml").is_file()  # the instance is set up
    out = ok(cartera("docs", "--warehouse", tmp_path / "no_warehouse_yet", env=env, timeout=300))
    site = out.split("dbt docs site: ")[1].split()[0]
    assert site.endswith("dbt_project/target/static_index.html")
    assert "cartera" in open(site, encoding="utf-8").read(2_000_000)
    assert not (tmp_path / "no_warehouse_yet").exists()


def test_demo_uses_the_demo_key_says_so_and_lists_the_outputs(tmp_path):
    import hmac
    from hashlib import sha256

    from orchestration.config import DEMO_PII_KEY

    env = cli_env(tmp_path, CARTERA_DEMO_LOANS="120", CARTERA_DEMO_DAYS="2")  # a real PII key is set...
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    out = ok(cartera("demo", "--landing", landing, "--warehouse", warehouse, env=env))
    assert "DEMO MODE" in out and DEMO_PII_KEY in out
    assert "2026-01-05..2026-01-06 (2 dates)  ingest ✓" in out
    assert "(missing)" not in out  # serving, Parquet, report, worklist, quality pages all exist
    assert "cartera explain L" in out and "select segment_code" in out

    con = duckdb.connect(str(warehouse / "cartera.duckdb"), read_only=True)
    loan_id, customer_id = con.execute("select loan_id, customer_id from marts.segment_assignments "
                                       "where as_of_date = '2026-01-06' limit 1").fetchone()
    con.close()
    con = duckdb.connect(str(warehouse / "serving.duckdb"), read_only=True)
    (key,) = con.execute("select customer_key from segment_assignments where as_of_date = '2026-01-06' "
                         "and loan_id = ?", [loan_id]).fetchone()
    con.close()
    # ...but the demo keys customer_key with the public demo key
    assert key == hmac.new(DEMO_PII_KEY.encode(), customer_id.encode(), sha256).hexdigest()

    again = ok(cartera("demo", "--landing", landing, "--warehouse", warehouse, env=env))
    assert "already published" in again and "generating" not in again
