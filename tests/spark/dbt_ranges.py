"""Run several `dbt build` invocations in ONE Python process (dbt's programmatic runner).

On the Spark target this starts the JVM, the local Spark session and the Derby metastore once
for all the ranges instead of once per range (dbt-spark's `method: session` reuses the
process's SparkSession). Usage:

    python dbt_ranges.py PROJECT_DIR TARGET_DIR EXCLUDED START:END [START:END ...]

EXCLUDED: comma-separated models to leave out ('' for none). The first range loads the seeds,
later ones reuse them. Exit status 1 names the failing range.
"""

from __future__ import annotations

import sys
import time

from dbt.cli.main import dbtRunner


def main(argv: list[str]) -> int:
    project, target, excluded_models, *ranges = argv
    runner = dbtRunner()
    for index, pair in enumerate(ranges):
        start, end = pair.split(":")
        args = ["build", "--project-dir", project, "--profiles-dir", project,
                "--target-path", target, "--log-path", f"{target}/logs",
                "--exclude-resource-type", "unit_test", "test",
                "--vars", f"{{start_date: '{start}', end_date: '{end}'}}"]
        excluded = (["resource_type:seed"] if index else []) + [m for m in excluded_models.split(",") if m]
        if excluded:
            args += ["--exclude", *excluded]
        began = time.perf_counter()
        result = runner.invoke(args)
        print(f"range {start}..{end}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - began:.1f}s",
              flush=True)
        if not result.success:
            return 1
    print(f"cpu seconds (user+sys, this process and its JVM): {cpu_seconds():.1f}", flush=True)
    return 0


def cpu_seconds() -> float:
    """CPU time (user + sys) of this process plus its live descendants, from /proc (Linux):
    the JVM of a local Spark session is a child that is never waited for, so rusage alone
    would miss it."""
    import os
    from pathlib import Path

    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    family, changed = {os.getpid()}, True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in family and pid not in family:
                family.add(pid)
                changed = True
    return sum(stats[pid][1] for pid in family if pid in stats)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
