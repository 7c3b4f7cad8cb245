"""Benchmark the daily report at lender scale (target: 1,000,000 loans in < 10 s, < 5 MB).

Builds a synthetic serving file with DuckDB (``orchestration.report.synthetic``: the
published tables and columns, plausible rows), then renders the report of its last date
with the same code the ``daily_report`` asset runs, and prints time, file size and the
machine. The roll-rate chart reads every published date of its 30-date window, so the
default builds 30 dates of history (30,000,000 rows of segment_assignments). Two timings:
*cold* (no roll-rate cache: every pair of the window is joined, as for the first report
on a new warehouse) and *daily* (the previous date's report already cached its pairs,
as in the daily run: one new pair is joined).

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3, help="renders to time (median reported)")
    ap.add_argument("--keep", type=Path, help="folder to keep (and reuse) the serving file in")
    args = ap.parse_args(argv)

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

        from orchestration.report.render import ROLL_CACHE_DIR

        reports = work / "reports"
        cache = reports / ROLL_CACHE_DIR

        cpu: dict[str, list[float]] = {}

        def timed(clear, label: str) -> list[float]:
            """Wall seconds per render (sorted); process CPU seconds go to cpu[label]."""
            out = []
            for _ in range(args.runs):
                clear()
                t, c = time.perf_counter(), time.process_time()
                write_report(serving, day, reports)
                out.append(time.perf_counter() - t)
                cpu.setdefault(label, []).append(time.process_time() - c)
            return sorted(out)

        # cold: no roll-rate cache, every pair of the 30-date window is joined
        cold = timed(lambda: shutil.rmtree(cache, ignore_errors=True), "cold")
        # daily: yesterday's report already cached its pairs; only (previous, day) is new
        import duckdb

        con = duckdb.connect(str(serving), read_only=True)
        prev = con.execute("SELECT max(as_of_date) FROM segment_summary WHERE as_of_date < ?", [day]).fetchone()[0]
        con.close()
        write_report(serving, prev, reports)
        daily = timed(lambda: [p.unlink() for p in cache.glob(f"roll_{day}_from_*.json")], "daily")
        path = reports / f"report_{day}.html"
        size = path.stat().st_size
        median = daily[len(daily) // 2]
        result = {
            "benchmark": "report",
            "loans": args.loans,
            "dates": args.dates,
            "as_of_date": str(day),
            "daily_render_seconds": {"median": round(median, 3), "min": round(daily[0], 3), "max": round(daily[-1], 3)},
            "cold_render_seconds": {"median": round(cold[len(cold) // 2], 3), "min": round(cold[0], 3),
                                    "max": round(cold[-1], 3)},
            "cpu_seconds_median": {k: round(sorted(v)[len(v) // 2], 3) for k, v in cpu.items()},
            "runs": args.runs,
            "report_bytes": size,
            "serving_build_seconds": None if build_s is None else round(build_s, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "machine": machine(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        print(json.dumps(result, indent=2))
        ok_time = max(median, result["cold_render_seconds"]["median"]) < TARGET_SECONDS
        ok_size = size < TARGET_BYTES
        print(
            f"report for {args.loans:,} loans ({args.dates} dates): daily {median:.2f} s median "
            f"[{daily[0]:.2f}-{daily[-1]:.2f}], cold (no cache) {cold[len(cold) // 2]:.2f} s "
            f"[{cold[0]:.2f}-{cold[-1]:.2f}] (target < {TARGET_SECONDS:.0f} s: {'OK' if ok_time else 'MISSED'}), "
            f"{size / 1e6:.2f} MB (target < {TARGET_BYTES / 1e6:.0f} MB: {'OK' if ok_size else 'MISSED'})"
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
