"""The ``cartera`` command (contract section 5): what operators and scripts call.

    cartera demo                      sample extracts -> pipeline -> where to look
    cartera generate --out DIR ...    write landing folders that follow the contract
    cartera run --from D --to D       run landing dates in order through the Dagster job
    cartera explain LOAN --date D     why a loan is in its segment
    cartera audit --date D            what a date's run read, published and with which rules
    cartera status                    processed / published / pending dates, last failure
    cartera prepare                   compile the rulebook, parse the dbt project
    cartera docs                      build the dbt docs site (lineage)

``run`` and ``demo`` execute the job ``cartera_daily`` of ``orchestration.definitions`` -- the
one the schedule and the landing sensor launch -- in this process, against the project's
Dagster instance (``.dagster_home``), so their runs appear in ``make dev``. Every failure
ends in one line on stderr and a non-zero exit code; ``--debug`` shows the traceback and
Dagster's log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

from orchestration import __version__
from orchestration.config import (
    DBT_PROJECT_DIR,
    DEFAULT_LANDING,
    DEFAULT_WAREHOUSE,
    DEMO_PII_KEY,
    PII_KEY_ENV,
    ConfigError,
)

DEMO_START, DEMO_SEED = dt.date(2026, 1, 5), 7
# The demo's size; the environment variables exist so tests can run a small demo.
DEMO_LOANS = int(os.environ.get("CARTERA_DEMO_LOANS", "3000"))
DEMO_DAYS = int(os.environ.get("CARTERA_DEMO_DAYS", "30"))
# The demo runs its dates as a few ranged runs (the bulk path): one dbt build per chunk
# instead of one per date, with a progress line per chunk.
DEMO_CHUNK = 10


class CliError(Exception):
    """A problem the user can act on; printed as one line, exit code 1."""


# ---- argument parsing ---------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def iso_date(text: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"bad date {text!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: no such day") from None


def share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and Dagster's log")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--landing", type=Path, help="landing folder (default $CARTERA_LANDING or data/landing)")
    where.add_argument("--warehouse", type=Path, help="warehouse folder (default $CARTERA_WAREHOUSE or data/warehouse)")

    parser = _Parser(prog="cartera", description="Daily collections-portfolio segmentation.", parents=[common])
    parser.add_argument("--version", action="version", version=f"cartera {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", parents=[common, where], help="generate sample extracts and run them all (demo key)")
    p.add_argument("--sequential", action="store_true", help="one run per date instead of ranged runs")

    p = sub.add_parser("generate", parents=[common], help="write realistic landing folders")
    p.add_argument("--out", type=Path, required=True, help="landing folder to write into")
    p.add_argument("--loans", type=int, default=DEMO_LOANS)
    p.add_argument("--days", type=int, default=DEMO_DAYS, help="number of business dates")
    p.add_argument("--start", type=iso_date, default=DEMO_START, help="first business date (YYYY-MM-DD)")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--delimiter", choices=[",", ";"], default=",")
    p.add_argument("--encoding", choices=["utf-8", "latin-1"], default="utf-8")
    p.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    p.add_argument("--date-format", choices=["iso", "dmy"], default="iso", help="iso = YYYY-MM-DD, dmy = DD/MM/YYYY")
    p.add_argument("--bad-rows", type=share, default=0.0, metavar="SHARE", help="share of rows that break a rule")

    p = sub.add_parser("run", parents=[common, where], help="run landing dates in order through the pipeline")
    p.add_argument("--from", dest="start", type=iso_date, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="end", type=iso_date, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--bulk", action="store_true", help="one ranged run over all the dates (fast onboarding)")
    p.add_argument("--chunk", type=positive_int, metavar="N",
                   help="with --bulk: ranged runs of at most N dates each, in order; memory tracks "
                        "N dates instead of the whole range (a long backfill of a large portfolio)")
    p.add_argument("--engine", choices=["duckdb", "spark"],
                   help="where the dbt models run (default $CARTERA_ENGINE or duckdb; spark: docs/scale-out.md)")

    p = sub.add_parser("explain", parents=[common, where], help="why a loan is in its segment on a date")
    p.add_argument("loan_id")
    p.add_argument("--date", type=iso_date, required=True, metavar="YYYY-MM-DD")

    p = sub.add_parser("audit", parents=[common, where], help="what a date's run read, published and why")
    p.add_argument("--date", type=iso_date, required=True, metavar="YYYY-MM-DD")

    sub.add_parser("status", parents=[common, where], help="processed, published and pending dates; last failure")
    sub.add_parser("prepare", parents=[common], help="compile the rulebook and parse the dbt project")
    sub.add_parser("docs", parents=[common, where], help="generate the dbt docs site (lineage)")
    return parser


# ---- environment ----------------------------------------------------------------------------

def _locations(args) -> tuple[Path, Path]:
    """Resolve --landing/--warehouse and export them: the Dagster resource reads them at import."""
    landing = Path(getattr(args, "landing", None) or os.environ.get("CARTERA_LANDING") or DEFAULT_LANDING)
    warehouse = Path(getattr(args, "warehouse", None) or os.environ.get("CARTERA_WAREHOUSE") or DEFAULT_WAREHOUSE)
    landing, warehouse = landing.resolve(), warehouse.resolve()
    os.environ["CARTERA_LANDING"] = str(landing)
    os.environ["CARTERA_WAREHOUSE"] = str(warehouse)
    os.environ["CARTERA_DUCKDB_PATH"] = str(warehouse / "cartera.duckdb")
    return landing, warehouse


def _instance():
    from dagster import DagsterInstance

    from orchestration.ops.instance import ensure_dagster_home

    ensure_dagster_home()
    return DagsterInstance.get()


def _resource():
    from orchestration.config import resource_from_env

    return resource_from_env()


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- run ------------------------------------------------------------------------------------

def _drops_to_run(landing: Path, start: dt.date, end: dt.date):
    from orchestration.ops.landing import dates_between, scan_landing
    from orchestration.partitions import PARTITIONS_START

    if end < start:
        raise CliError(f"--to {end} is before --from {start}")
    if start.isoformat() < PARTITIONS_START:
        raise CliError(
            f"{start} is before the first partition date {PARTITIONS_START} "
            "(set CARTERA_PARTITIONS_START to an earlier date)"
        )
    if not landing.is_dir():
        raise CliError(f"landing folder {landing} does not exist")
    drops = dates_between(scan_landing(landing), start, end)
    if not drops:
        raise CliError(f"no landing folders dated {start}..{end} in {landing}")
    incomplete = [d for d in drops if not d.complete]
    if incomplete:
        first = incomplete[0]
        raise CliError(
            f"{first.iso}: drop incomplete (no _control.csv in {first.path}); nothing was run"
        )
    return drops


def _run_dates(dates: list[str], *, bulk: bool, debug: bool, chunk: int | None = None) -> float:
    """Run dates in order (one run each, one ranged run, or ranged runs of ``chunk`` dates)."""
    from orchestration.ops.alerts import report_run_failure, run_started_at
    from orchestration.ops.runner import execute

    instance = _instance()
    _fail_abandoned_runs(instance)
    began = time.monotonic()
    if bulk:
        groups = [dates]
    elif chunk:
        groups = [dates[i : i + chunk] for i in range(0, len(dates), chunk)]
    else:
        groups = [[d] for d in dates]
    for index, group in enumerate(groups):
        first, last = group[0], group[-1]
        label = first if first == last else f"{first}..{last} ({len(group)} dates)"
        outcome = execute(first, last, instance=instance, launched_by="cli", label=label, debug=debug)
        if outcome.success:
            continue
        failure = outcome.failure
        try:
            report_run_failure(
                _resource(), run_id=outcome.run_id, dates=group, stage=failure.stage,
                reason=failure.reason, started_at=run_started_at(instance, outcome.run_id), patience=90,
            )
        except Exception as exc:  # noqa: BLE001 - the run's failure is the message that matters
            from orchestration.ops.alerts import disk_full_reason

            why = disk_full_reason(str(exc)) or " ".join(str(exc).split())
            print(f"cartera: warning: could not record the alert in the warehouse: {why}", file=sys.stderr)
        where = first if first == last else f"{first}..{last}"
        log = f"; log {_rel(outcome.log_path)}" if outcome.log_path else ""
        later = sum(len(g) for g in groups[index + 1 :])
        skipped = f"; {later} later date(s) not run" if later else ""
        raise CliError(
            f"{where} failed at {failure.stage}: {failure.reason} (run {outcome.run_id[:8]}{skipped}{log})"
        )
    return time.monotonic() - began


def cmd_run(args) -> int:
    if not os.environ.get(PII_KEY_ENV):
        raise CliError(
            f"{PII_KEY_ENV} is not set: it is the secret behind customer_key; "
            f"export {PII_KEY_ENV}=<a long random string> (keep it out of the repository)"
        )
    if args.chunk and not args.bulk:
        raise CliError("--chunk splits a --bulk run; add --bulk (without it every date is its own run)")
    landing, warehouse = _locations(args)
    if args.engine:  # read by the transform step (orchestration/transform/spark.py)
        os.environ["CARTERA_ENGINE"] = args.engine
    drops = _drops_to_run(landing, args.start, args.end)
    chunk = args.chunk if args.chunk and args.chunk < len(drops) else None
    mode = (f"ranged runs of up to {chunk} dates" if chunk else "one ranged run") if args.bulk else "one run per date"
    print(f"running {len(drops)} date(s) {drops[0].iso}..{drops[-1].iso} from {_rel(landing)} ({mode})")
    seconds = _run_dates([d.iso for d in drops], bulk=args.bulk and not chunk, debug=args.debug, chunk=chunk)
    print(f"done: {len(drops)} date(s) published to {_rel(warehouse / 'serving.duckdb')} in {seconds:.1f}s")
    return 0


# ---- demo -----------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from orchestration.ops.landing import published_dates, scan_landing

    os.environ["CARTERA_DEMO"] = "1"
    os.environ.pop(PII_KEY_ENV, None)  # the demo always uses the public demo key
    print(
        f"DEMO MODE: customer_key is keyed with the fixed, public demo key {DEMO_PII_KEY!r}; "
        f"never use demo mode for real data (set {PII_KEY_ENV} and use `cartera run`)."
    )
    landing, warehouse = _locations(args)
    scan = scan_landing(landing)
    if not scan.drops:
        from orchestration.simulate import generate_landing

        print(f"generating {DEMO_LOANS:,} loans x {DEMO_DAYS} business dates into {_rel(landing)} (seed {DEMO_SEED}) ...")
        began = time.monotonic()
        generate_landing(landing, loans=DEMO_LOANS, days=DEMO_DAYS, start=DEMO_START, seed=DEMO_SEED, progress=True)
        print(f"generated in {time.monotonic() - began:.1f}s")
        scan = scan_landing(landing)
    else:
        print(f"using the {len(scan.drops)} landing folders already in {_rel(landing)}")
    published = published_dates(warehouse / "serving.duckdb")
    pending = [d.iso for d in scan.drops if d.complete and d.date not in published]
    if pending:
        print(f"running {len(pending)} date(s) {pending[0]}..{pending[-1]} through the pipeline ...")
        seconds = _run_dates(pending, bulk=False, debug=args.debug, chunk=None if args.sequential else DEMO_CHUNK)
        print(f"pipeline finished in {seconds:.1f}s")
    else:
        print(f"every landing date is already published in {_rel(warehouse / 'serving.duckdb')} "
              "(delete data/ to start over)")
    _print_outputs(warehouse, scan.drops[-1].iso if scan.drops else None)
    return 0


def _example_loan(serving: Path, day: str) -> str | None:
    import duckdb

    try:
        con = duckdb.connect(str(serving), read_only=True)
    except Exception:  # noqa: BLE001
        return None
    try:
        row = con.execute(
            "select loan_id from segment_assignments where as_of_date = ? and segment_code <> 'AL_DIA' "
            "order by balance_pen desc limit 1",
            [day],
        ).fetchone()
        return row[0] if row else None
    except Exception:  # noqa: BLE001
        return None
    finally:
        con.close()


def _print_outputs(warehouse: Path, last: str | None) -> None:
    day = last or "<YYYY-MM-DD>"
    items = [
        ("serving warehouse (BI, open read-only)", warehouse / "serving.duckdb"),
        ("Parquet", warehouse / "parquet"),
        (f"report of {day}", warehouse / "reports" / f"report_{day}.html"),
        (f"worklist of {day} (PII, restricted)", warehouse / "restricted" / f"worklist_{day}.csv"),
        ("quality pages", warehouse / "quality"),
        ("pipeline warehouse (not for BI)", warehouse / "cartera.duckdb"),
    ]
    print("\nOutputs:")
    for label, path in items:
        print(f"  {label:<40} {_rel(path)}{'' if path.exists() else '  (missing)'}")
    print("  Dagster UI (runs, assets, lineage)       make dev   -> http://127.0.0.1:3000")
    loan = _example_loan(warehouse / "serving.duckdb", day) if last else None
    print("\nTry:")
    print(f"  .venv/bin/cartera explain {loan or '<LOAN_ID>'} --date {day}")
    print(f"  .venv/bin/cartera audit --date {day}")
    print("  .venv/bin/cartera status")
    serving = _rel(warehouse / "serving.duckdb")
    print(f"  .venv/bin/python -c \"import duckdb; con = duckdb.connect('{serving}', read_only=True); "
          f"con.sql(\\\"select segment_code, loans, balance_pen, balance_share from segment_summary "
          f"where as_of_date = '{day}' order by balance_pen desc\\\").show()\"")
    print(f"  .venv/bin/python -c \"import duckdb; con = duckdb.connect('{serving}', read_only=True); "
          f"con.sql(\\\"select from_segment, to_segment, loans from segment_migration "
          f"where as_of_date = '{day}' and from_segment <> to_segment order by loans desc limit 10\\\").show()\"")


# ---- generate -------------------------------------------------------------------------------

def cmd_generate(args) -> int:
    from orchestration.simulate import generate_landing

    if args.loans <= 0 or args.days <= 0:
        raise CliError("--loans and --days must be positive")
    began = time.monotonic()
    dates = generate_landing(
        args.out, loans=args.loans, days=args.days, start=args.start, seed=args.seed,
        delimiter=args.delimiter, encoding=args.encoding, gzip=args.gzip,
        date_format=args.date_format, bad_row_share=args.bad_rows, progress=True,
    )
    dates = sorted(dates)
    print(f"wrote {len(dates)} landing folder(s) {dates[0]}..{dates[-1]} into {args.out} "
          f"in {time.monotonic() - began:.1f}s")
    return 0


# ---- explain / audit ------------------------------------------------------------------------

def _open_warehouse(warehouse: Path):
    import duckdb

    db = warehouse / "cartera.duckdb"
    if not db.exists():
        raise CliError(f"no warehouse at {db}: run `cartera run` (or `cartera demo`) first")
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise CliError(f"{db} is busy (a run is writing it); try again when it ends") from exc
        raise


def cmd_explain(args) -> int:
    _, warehouse = _locations(args)
    from orchestration.transform.explain import explain_loan
    from orchestration.transform.rulebook import compile_rulebook

    con = _open_warehouse(warehouse)
    try:
        print(explain_loan(con, args.loan_id, args.date.isoformat(), compile_rulebook()))
    finally:
        con.close()
    return 0


def cmd_audit(args) -> int:
    _, warehouse = _locations(args)
    from orchestration.publish.audit import format_audit

    if not (warehouse / "cartera.duckdb").exists():
        raise CliError(f"no warehouse at {warehouse / 'cartera.duckdb'}: run `cartera run` first")
    print(format_audit(_resource(), args.date.isoformat()))
    return 0


# ---- status ---------------------------------------------------------------------------------

def _max_transformed(warehouse: Path) -> str:
    import duckdb

    db = warehouse / "cartera.duckdb"
    if not db.exists():
        return "none (no warehouse yet)"
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.IOException:
        return "unknown (a run is writing the warehouse)"
    try:
        value = con.execute("select max(as_of_date) from marts.segment_assignments").fetchone()[0]
        return str(value) if value else "none"
    except duckdb.Error:
        return "none"
    finally:
        con.close()


def cmd_status(args) -> int:
    from orchestration.ops.alerts import read_alerts
    from orchestration.ops.freshness import LIMA, freshness
    from orchestration.ops.landing import next_date_to_run, published_dates, scan_landing

    landing, warehouse = _locations(args)
    scan = scan_landing(landing)
    published = published_dates(warehouse / "serving.duckdb")
    print(f"landing     {_rel(landing)}: {len(scan.drops)} date folder(s)"
          + (f" {scan.drops[0].iso}..{scan.drops[-1].iso}" if scan.drops else "")
          + (f"; ignored (not YYYY-MM-DD): {', '.join(scan.junk)}" if scan.junk else ""))
    print(f"warehouse   {_rel(warehouse)}")
    print(f"last processed  {_max_transformed(warehouse)}")
    last_published = max(published) if published else None
    print(f"last published  {last_published or 'none'}" + (f" ({len(published)} date(s))" if published else ""))
    pending = [d for d in scan.drops if d.date not in published]
    if pending:
        shown = ", ".join(d.iso + ("" if d.complete else " (incomplete)") for d in pending[:10])
        more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
        print(f"pending         {len(pending)}: {shown}{more}")
    else:
        print("pending         none")
    try:  # shown below as "abandoned run"
        from orchestration.ops.instance import fail_abandoned_runs

        fail_abandoned_runs(_instance())
    except Exception:  # noqa: BLE001 - status must not fail on the instance
        pass
    plan = next_date_to_run(scan, published, settle_seconds=0)
    blocked = _already_tried(plan.drop) if plan.drop else None
    print(f"next            {blocked or plan.message}")
    print(f"freshness       {freshness(last_published, dt.datetime.now(LIMA)).message}")
    try:
        alerts = [a for a in read_alerts(_resource(), limit=50) if a[3] != "freshness"]
    except Exception:  # noqa: BLE001
        alerts = None
    if alerts is None:
        print("last failure    unknown (the warehouse is busy)")
    elif alerts:
        at, day, run_id, stage, reason = alerts[0]
        print(f"last failure    {day} at {stage}: {reason} (run {str(run_id)[:8]}, {at:%Y-%m-%d %H:%M})")
    else:
        print("last failure    none")
    _print_last_run()
    return 0


def _fail_abandoned_runs(instance) -> None:
    """Runs a killed ``cartera run`` left STARTED: mark them failed and say so (one line each)."""
    from orchestration.ops.instance import fail_abandoned_runs

    try:
        lines = fail_abandoned_runs(instance)
    except Exception as exc:  # noqa: BLE001 - housekeeping must never stop a run
        print(f"cartera: warning: could not check for abandoned runs: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return
    for line in lines:
        print(f"note: {line}")


def _already_tried(drop) -> str | None:
    """The landing sensor's view: a drop whose run already failed is not relaunched."""
    from orchestration.ops.sensors import already_tried

    try:
        return already_tried(_instance(), drop)
    except Exception:  # noqa: BLE001 - status must not fail on the instance
        return None


def _print_last_run() -> None:
    from dagster import RunsFilter

    from orchestration.ops.instance import TAG_ABANDONED
    from orchestration.ops.jobs import JOB_NAME, TAG_AS_OF_DATE, TAG_LAUNCHED_BY

    try:
        runs = _instance().get_runs(filters=RunsFilter(job_name=JOB_NAME), limit=10)
    except Exception:  # noqa: BLE001
        return
    if runs:
        run = runs[0]
        print(f"last Dagster run {run.run_id[:8]} {run.status.value} "
              f"({run.tags.get(TAG_AS_OF_DATE, '?')}, by {run.tags.get(TAG_LAUNCHED_BY, 'ui')})")
    abandoned = [r.tags[TAG_ABANDONED] for r in runs if TAG_ABANDONED in r.tags]
    for reason in abandoned[:3]:  # newest first, among the last 10 runs
        print(f"abandoned run   {reason}")


# ---- prepare / docs -------------------------------------------------------------------------

def cmd_prepare(args) -> int:
    from orchestration.ops.instance import ensure_dagster_home

    home = ensure_dagster_home()
    from orchestration.transform.assets import prepare_dbt_project
    from orchestration.transform.rulebook import compile_rulebook

    rulebook = compile_rulebook()
    manifest = prepare_dbt_project()
    print(f"rulebook version {rulebook.version}")
    print(f"dbt manifest     {_rel(Path(manifest))}")
    print(f"DAGSTER_HOME     {_rel(home)}")
    return 0


def cmd_docs(args) -> int:
    _, warehouse = _locations(args)
    from orchestration.transform.assets import DBT_EXECUTABLE, prepare_dbt_project

    prepare_dbt_project()
    db = warehouse / "cartera.duckdb"
    command = [DBT_EXECUTABLE, "docs", "generate", "--static",
               "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    database = str(db)
    if not db.exists():  # no warehouse yet: lineage and docs without table statistics
        command.append("--empty-catalog")
        database = ":memory:"  # and no empty warehouse file left behind
    env = {**os.environ, "CARTERA_DUCKDB_PATH": database}
    result = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "error" in ln.lower()]
        raise CliError("dbt docs generate failed: " + (lines[-1].strip() if lines else f"exit code {result.returncode}"))
    site = DBT_PROJECT_DIR / "target" / "static_index.html"
    print(f"dbt docs site: {site}  (open it in a browser; it needs no server)")
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "generate": cmd_generate,
    "run": cmd_run,
    "explain": cmd_explain,
    "audit": cmd_audit,
    "status": cmd_status,
    "prepare": cmd_prepare,
    "docs": cmd_docs,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:
        warnings.filterwarnings("ignore")
        # the alert line is already the error we print; libraries' warnings go nowhere
        logging.getLogger().addHandler(logging.NullHandler())
        logging.getLogger().setLevel(logging.CRITICAL)
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("cartera: interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError, LookupError) as exc:  # messages written for people
        if args.debug:
            traceback.print_exc()
        print(f"cartera: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"cartera: error: {type(exc).__name__}: {message[:500]}"
              + ("" if args.debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return 1


def entrypoint() -> None:
    """The ``cartera`` command: :func:`main`, then exit without the interpreter's teardown.

    When ``main`` returns, everything cartera wrote is committed and closed (DuckDB files,
    the Dagster instance, logs). Tearing down the ~600,000 objects Dagster, dbt-core, Great
    Expectations and pandas leave behind took 1.5 s of a 17 s daily run, for nothing; so the
    output is flushed and the process ends with the exit code.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
