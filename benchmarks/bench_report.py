"""Benchmark the daily report at lender scale (target: 1,000,000 loans in < 10 s, < 5 MB).

Builds a synthetic serving file with DuckDB (``orchestration.report.synthetic``: the
published tables and columns, plausible rows), then renders the report of its last date
with the same code the ``daily_report`` asset runs, and prints time, CPU, file size and the
machine. The roll-rate chart covers 30 published dates, so the default builds 30 dates of
history (30,000,000 rows of segment_assignments). The report keeps nothing between renders
(no cache): every render is a first render, as after a bulk backfill.

The roll rates come from the mart ``bucket_roll_rates``, whose rows for a date are computed
once when the date is transformed. That cost is measured separately (*increment*): the real
dbt model (``models/marts/bucket_roll_rates.sql``) is built for the previous date, then
incrementally for the last date (``dbt build``: pre-hook delete, insert, data tests) on a
scratch warehouse whose ``marts.segment_assignments`` is a view over the serving file; its
rows must equal the serving file's rows for that date.

    .venv/bin/python benchmarks/bench_report.py                  # 1,000,000 loans x 30 dates
    .venv/bin/python benchmarks/bench_report.py --loans 20000 --dates 5   # quick look
    .venv/bin/python benchmarks/bench_report.py --keep /tmp/bench  # reuse the serving file

Results are appended as one JSON line to benchmarks/results/bench_report.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, memory_gib  # benchmarks/machine.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 10.0
TARGET_BYTES = 5_000_000


def machine() -> dict:
    cpu = cpu_model()
    mem_gb = memory_gib()
    import duckdb
    import plotly

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gb, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "plotly": plotly.__version__,
        "load_average": os.getloadavg(),
    }


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def model_increment(serving: Path, day, prev, work: Path) -> dict:
    """Build bucket_roll_rates for ``prev`` with dbt, then time the incremental build of ``day``.

    A copy of the dbt project runs against a scratch warehouse: ``marts.segment_assignments``
    is a view over the serving file (attached read-only as ``srv``), ``config.dpd_buckets``
    the seed. Returns the wall/CPU seconds of the ``dbt build`` of ``day`` and the model's own
    execution time from run_results.json, and checks its rows against the serving file's.
    """
    import duckdb

    project = work / "dbt" / "dbt_project"
    shutil.rmtree(work / "dbt", ignore_errors=True)
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*")
    shutil.copytree(ROOT / "dbt_project", project, ignore=ignore)
    shutil.copytree(ROOT / "models", project.parent / "models", ignore=ignore)
    warehouse = work / "dbt" / "cartera.duckdb"
    (project / "profiles.yml").write_text(
        "cartera:\n  target: bench\n  outputs:\n    bench:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 1\n"
        f"      attach:\n        - path: '{serving}'\n          alias: srv\n          read_only: true\n",
        encoding="utf-8",
    )
    con = duckdb.connect(str(warehouse))
    con.execute(f"ATTACH '{serving}' AS srv (READ_ONLY)")
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE VIEW marts.segment_assignments AS SELECT * FROM srv.main.segment_assignments")
    con.execute("CREATE SCHEMA config")
    con.execute(
        "CREATE TABLE config.dpd_buckets AS SELECT dpd_bucket::VARCHAR AS dpd_bucket, min_dpd::INTEGER AS min_dpd "
        f"FROM read_csv('{ROOT / 'dbt_project' / 'seeds' / 'dpd_buckets.csv'}', all_varchar = true)"
    )
    con.close()

    def dbt(date) -> tuple[float, float]:
        args = [str(ROOT / ".venv" / "bin" / "dbt"), "build", "--select", "bucket_roll_rates",
                "--exclude-resource-type", "unit_test", "--project-dir", str(project), "--profiles-dir",
                str(project), "--vars", json.dumps({"start_date": str(date), "end_date": str(date)})]
        t, c = time.perf_counter(), _cpu_children()
        done = subprocess.run(args, cwd=project, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"dbt build of bucket_roll_rates for {date} failed:\n{done.stdout[-3000:]}")
        return time.perf_counter() - t, _cpu_children() - c

    dbt(prev)  # the table as the previous day's run left it
    wall, cpu = dbt(day)  # the day's increment: pre-hook delete, insert, data tests
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))
    model_s = sum(r["execution_time"] for r in results["results"] if r["unique_id"].startswith("model."))
    tests_s = sum(r["execution_time"] for r in results["results"] if r["unique_id"].startswith("test."))

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute(f"ATTACH '{serving}' AS srv2 (READ_ONLY)")
        cols = ("as_of_date, previous_date, from_bucket, to_bucket, from_bucket_min_dpd, to_bucket_min_dpd, "
                "loans, previous_balance_pen, balance_pen")
        built = con.execute(f"SELECT {cols} FROM marts.bucket_roll_rates WHERE as_of_date = ? ORDER BY ALL",
                            [day]).fetchall()
        published = con.execute(f"SELECT {cols} FROM srv2.main.bucket_roll_rates WHERE as_of_date = ? ORDER BY ALL",
                                [day]).fetchall()
    finally:
        con.close()
    if built != published or not built:
        raise SystemExit(f"dbt's bucket_roll_rates rows for {day} differ from the serving file's")
    return {"dbt_build_wall_seconds": round(wall, 3), "dbt_build_cpu_seconds": round(cpu, 3),
            "model_seconds": round(model_s, 3), "tests_seconds": round(tests_s, 3), "rows": len(built)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3, help="renders to time (median reported)")
    ap.add_argument("--keep", type=Path, help="folder to keep (and reuse) the serving file in")
    ap.add_argument("--no-increment", action="store_true", help="skip timing the dbt increment of the mart")
    args = ap.parse_args(argv)

    from orchestration.report.data import load_report_data
    from orchestration.report.render import write_report
    from orchestration.report.synthetic import build_serving_file

    work = args.keep or Path(tempfile.mkdtemp(prefix="cartera-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    serving = work / f"serving_{args.loans}x{args.dates}.duckdb"
    try:
        t0 = time.perf_counter()
        if serving.exists() and args.keep:
            import duckdb

            con = duckdb.connect(str(serving), read_only=True)
            day = con.execute("SELECT max(as_of_date) FROM segment_summary").fetchone()[0]
            con.close()
            build_s = None
            print(f"reusing {serving}")
        else:
            days = build_serving_file(serving, loans=args.loans, dates=args.dates)
            day = days[-1]
            build_s = time.perf_counter() - t0
            print(f"built {serving} ({serving.stat().st_size / 1e6:.0f} MB) in {build_s:.1f} s")

        import duckdb

        con = duckdb.connect(str(serving), read_only=True)
        prev = con.execute("SELECT max(as_of_date) FROM segment_summary WHERE as_of_date < ?", [day]).fetchone()[0]
        con.close()
        if load_report_data(serving, day).roll_pairs_joined:
            raise SystemExit(f"{serving} lacks bucket_roll_rates rows: the render would join dates")

        reports = work / "reports"
        load_before = os.getloadavg()
        walls, cpus = [], []
        for _ in range(args.runs):  # every render starts from nothing the previous one left
            shutil.rmtree(reports, ignore_errors=True)
            t, c = time.perf_counter(), time.process_time()
            write_report(serving, day, reports)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        load_after = os.getloadavg()
        walls.sort()
        path = reports / f"report_{day}.html"
        size = path.stat().st_size
        median = walls[len(walls) // 2]

        increment = None if args.no_increment else model_increment(serving, day, prev, work)
        result = {
            "benchmark": "report",
            "loans": args.loans,
            "dates": args.dates,
            "as_of_date": str(day),
            "roll_source": "bucket_roll_rates",
            "cold_render_seconds": {"median": round(median, 3), "min": round(walls[0], 3), "max": round(walls[-1], 3)},
            "cpu_seconds_median": {"cold": round(sorted(cpus)[len(cpus) // 2], 3)},
            "runs": args.runs,
            "report_bytes": size,
            "increment_bucket_roll_rates": increment,
            "serving_build_seconds": None if build_s is None else round(build_s, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "load_average_renders": [load_before, load_after],
            "machine": machine(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        print(json.dumps(result, indent=2))
        ok_time = median < TARGET_SECONDS
        ok_size = size < TARGET_BYTES
        print(
            f"report for {args.loans:,} loans ({args.dates} dates), first render (nothing cached): "
            f"{median:.2f} s median [{walls[0]:.2f}-{walls[-1]:.2f}], {result['cpu_seconds_median']['cold']:.2f} "
            f"CPU s (target < {TARGET_SECONDS:.0f} s: {'OK' if ok_time else 'MISSED'}), "
            f"{size / 1e6:.2f} MB (target < {TARGET_BYTES / 1e6:.0f} MB: {'OK' if ok_size else 'MISSED'}); "
            f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
        )
        if increment:
            print(
                f"the day's bucket_roll_rates increment (dbt build, at transform time): model "
                f"{increment['model_seconds']:.2f} s + tests {increment['tests_seconds']:.2f} s; whole dbt "
                f"invocation {increment['dbt_build_wall_seconds']:.1f} s wall, "
                f"{increment['dbt_build_cpu_seconds']:.1f} CPU s; {increment['rows']} rows"
            )
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "bench_report.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
        return 0 if ok_time and ok_size else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
