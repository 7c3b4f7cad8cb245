"""How fast the extract generator writes landing folders, and on what machine.

    .venv/bin/python benchmarks/bench_generate.py --loans 1000000 --days 1
    .venv/bin/python benchmarks/bench_generate.py --loans 3000 --days 30

Prints wall time, rows written, peak resident memory (getrusage) and the machine (CPU
model, cores, memory, Python and library versions). Output goes to a temporary folder
that is removed afterwards unless --out is given. Target (issue 2): 1,000,000 loans for
one date in under 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_model, memory_gib  # noqa: E402


def machine() -> dict:
    cpu = cpu_model()
    memory = f"{memory_gib():.1f} GiB"
    import duckdb
    import numpy
    import pyarrow

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "duckdb": duckdb.__version__,
        "os": platform.platform(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--start", default="2026-01-05")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--bad-row-share", type=float, default=0.0)
    parser.add_argument("--out", help="keep the output here (default: a temporary folder, removed)")
    args = parser.parse_args(argv)

    from orchestration.simulate import generate_landing

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_generate_"))
    try:
        t0 = time.perf_counter()
        dates = generate_landing(
            out, loans=args.loans, days=args.days, start=dt.date.fromisoformat(args.start), seed=args.seed,
            gzip=args.gzip, bad_row_share=args.bad_row_share,
        )
        wall = time.perf_counter() - t0
        rows, size = {}, 0
        for day in dates:
            for line in (out / day.isoformat() / "_control.csv").read_text().splitlines()[1:]:
                name, count, _ = line.split(",")
                rows[name.split(".")[0]] = rows.get(name.split(".")[0], 0) + int(count)
            size += sum(p.stat().st_size for p in (out / day.isoformat()).iterdir())
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib = usage.ru_maxrss / 1024  # Linux: KiB
    cpu_s = usage.ru_utime + usage.ru_stime  # whole process, imports included
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    print(f"generate_landing: {args.loans:,} loans x {args.days} business date(s), gzip={args.gzip}")
    print(f"  wall time      {wall:.2f} s ({wall / max(len(dates), 1):.2f} s per date)")
    print(f"  cpu time       {cpu_s:.2f} s (process total; load average {load:.1f} while running)")
    print(f"  peak RSS       {peak_mib:,.0f} MiB")
    print("  rows written   " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(f"  bytes on disk  {size / 1e6:,.1f} MB")
    for key, value in machine().items():
        print(f"  {key:<14} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
