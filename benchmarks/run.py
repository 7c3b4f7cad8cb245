"""cartera benchmark harness (``make bench``): speed and memory of the real pipeline.

Every measured run is the production path: ``cartera run`` in a subprocess, which executes
the Dagster job ``cartera_daily`` of ``orchestration.definitions`` (ingest with its quality
checks, dbt transform, publish, report) against a throw-away warehouse and Dagster
instance. The harness takes

* wall time of the whole command (process start to exit),
* per-stage time from the Dagster run's step statistics (STEP_START .. STEP_SUCCESS of each
  step, stage = the step's asset group; checks run inside the ingest step),
* peak memory two ways: the largest single process (``wait4`` rusage of the command, which
  covers its dbt subprocess too) and the sampled sum of RSS over the whole process tree
  (every 50 ms), which is what the machine must actually hold,
* input rows per second, the machine and the versions.

Scenarios (targets from issue 8; scales can be lowered with --loans/--days):

    smoke  300 loans x 3 dates: harness self-test, reference == cartera      (CI, seconds)
    B1     1,000,000 loans, 30 dates loaded, one daily run end to end        <= 30 s, <= 4 GB
    B2     100,000 loans: daily run after 30 vs after 250 dates of history  ratio <= 1.3
    B3     bulk backfill of 250 dates x 100,000 loans                        <= 10 min
    B4     200,000 loans x 250 dates: daily run vs the pandas reference      >= 5x faster, <= 1/3 memory
    B5     a 1,000-loan day end to end (fixed cost)                          <= 10 s
    B6     transform stage vs one hand-written DuckDB query (single_query.sql) <= 2x

Results go to ``benchmarks/results/<timestamp>.json``; data and warehouses to --workdir
(default ``data/bench``; generated landing folders are cached there by scale and seed).

    python benchmarks/run.py --scenario smoke
    python benchmarks/run.py --scenario B5 --repeat 3
    python benchmarks/run.py --scenario B2 --loans 10000 --days 60
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.compare import compare, load_published  # noqa: E402
from benchmarks.machine import cpu_model, memory_gib  # noqa: E402

BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_WORKDIR = ROOT / "data" / "bench"
SINGLE_QUERY = BENCH_DIR / "single_query.sql"
GENERATE_START = "2025-01-06"
BENCH_PII_KEY = "cartera-benchmark-key-not-secret"
STAGES = ("ingest", "transform", "publish", "report")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------
# Measuring one command
# ---------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def _name(pid: int) -> str:
    """A short label for a process: 'dbt' for the dbt subprocess, else the program name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return "?"
    for arg in argv[:3]:
        base = os.path.basename(arg)
        if base in ("dbt", "cartera", "pandas_reference.py"):
            return base
    return os.path.basename(argv[0]) if argv else "?"


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants, and each one's peak."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.per_process: dict[int, list] = {}  # pid -> [label, peak bytes]
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            todo, total = [self.pid], 0
            while todo:
                pid = todo.pop()
                rss = _rss(pid)
                total += rss
                entry = self.per_process.setdefault(pid, [_name(pid), 0])
                entry[1] = max(entry[1], rss)
                todo.extend(_children(pid))
            self.peak = max(self.peak, total)
            self.stop_event.wait(self.interval)

    def peaks_mb(self) -> dict:
        """label -> largest peak RSS (MB) among the processes with that label."""
        out: dict[str, float] = {}
        for label, peak in self.per_process.values():
            out[label] = max(out.get(label, 0.0), round(peak / 2**20, 1))
        return out


@dataclass
class Measurement:
    command: str
    wall_s: float
    peak_rss_tree_mb: float
    peak_rss_process_mb: float
    returncode: int
    log: str
    cpu_s: float = 0.0                           # user + system CPU of the command and its children
    peak_rss_by_process_mb: dict = field(default_factory=dict)
    started_at: float = 0.0
    stages: dict = field(default_factory=dict)   # stage -> seconds (from Dagster step stats)
    steps: dict = field(default_factory=dict)    # step key -> seconds
    dagster_runs: list = field(default_factory=list)
    dbt: dict = field(default_factory=dict)      # dbt's own timing (run_results.json) per resource type
    rows: int = 0                                # input rows of the dates processed

    @property
    def overhead_s(self) -> float:
        return self.wall_s - sum(self.stages.values())

    def overhead_parts(self) -> dict:
        """Where the time outside the steps goes: before the first Dagster run starts
        (interpreter, imports, loading the code location), inside runs between steps, after."""
        if not self.dagster_runs:
            return {}
        first = min(r["start"] for r in self.dagster_runs)
        last = max(r["end"] for r in self.dagster_runs)
        in_runs = sum(r["end"] - r["start"] for r in self.dagster_runs)
        return {"startup_s": first - self.started_at, "between_steps_s": in_runs - sum(self.steps.values()),
                "shutdown_s": self.started_at + self.wall_s - last}


def measure(cmd: list[str], env: dict, log_path: Path) -> Measurement:
    """Run ``cmd`` to completion; wall time, peak RSS (tree sampled and largest process)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started_at = time.time()
    began = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop_event.set()
        sampler.join()
    return Measurement(
        command=" ".join(str(c) for c in cmd), wall_s=wall, peak_rss_tree_mb=sampler.peak / 2**20,
        peak_rss_process_mb=usage.ru_maxrss / 1024, returncode=proc.returncode, log=str(log_path),
        cpu_s=usage.ru_utime + usage.ru_stime, started_at=started_at,
        peak_rss_by_process_mb=sampler.peaks_mb(),
    )


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# The project: generator, CLI, Dagster instance
# ---------------------------------------------------------------------------------------
def cartera_command() -> list[str]:
    script = Path(sys.executable).parent / "cartera"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "orchestration.cli"]


def landing_for(workdir: Path, loans: int, days: int, seed: int) -> Path:
    """Generated landing folders for this scale, reused when already there."""
    landing = workdir / f"landing-{loans}x{days}-s{seed}"
    marker = landing / ".complete"
    if marker.exists():
        return landing
    if landing.exists():
        shutil.rmtree(landing)
    print(f"  generating {loans:,} loans x {days} dates into {landing} ...", flush=True)
    m = measure([*cartera_command(), "generate", "--out", str(landing), "--loans", str(loans),
                 "--days", str(days), "--start", GENERATE_START, "--seed", str(seed)],
                dict(os.environ), workdir / "logs" / f"generate-{loans}x{days}.log")
    if m.returncode != 0:
        raise SystemExit(f"cartera generate failed (exit {m.returncode}):\n{_tail(m.log)}")
    print(f"  generated in {m.wall_s:.1f}s (peak {m.peak_rss_tree_mb:.0f} MB)", flush=True)
    marker.write_text(json.dumps({"loans": loans, "days": days, "seed": seed, "seconds": m.wall_s}))
    return landing


def landing_dates(landing: Path) -> list[str]:
    return sorted(p.name for p in landing.iterdir()
                  if p.is_dir() and len(p.name) == 10 and (p / "_control.csv").exists())


def input_rows(landing: Path, dates: list[str]) -> int:
    total = 0
    for day in dates:
        with open(landing / day / "_control.csv", encoding="utf-8", newline="") as fh:
            total += sum(int(r["row_count"]) for r in csv.DictReader(fh))
    return total


def loan_rows(landing: Path, day: str) -> int:
    with open(landing / day / "_control.csv", encoding="utf-8", newline="") as fh:
        return sum(int(r["row_count"]) for r in csv.DictReader(fh) if r["file_name"].startswith("loans."))


_STAGE_MAP: dict[str, str] | None = None


def stage_of_step(step_key: str, env: dict) -> str:
    """Stage (asset group) of a Dagster step, asked once from the code location itself."""
    global _STAGE_MAP
    if _STAGE_MAP is None:
        probe = ("import json; from orchestration.definitions import defs; "
                 "from orchestration.ops.alerts import stages_by_step; print(json.dumps(stages_by_step(defs)))")
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
        try:
            _STAGE_MAP = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            _STAGE_MAP = {}
    stage = _STAGE_MAP.get(step_key)
    if stage:
        return "ingest" if stage == "quality" else stage
    key = step_key.lower()
    for needle, name in (("dbt", "transform"), ("ingest", "ingest"), ("raw", "ingest"),
                         ("serving", "publish"), ("publish", "publish"), ("report", "report")):
        if needle in key:
            return name
    return key


def dagster_stats(home: Path, since: float, env: dict) -> tuple[dict, dict, list]:
    """(stage seconds, step seconds, runs) of the Dagster runs started after ``since``."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    stages: dict[str, float] = {}
    steps: dict[str, float] = {}
    runs = []
    try:
        for run in reversed(instance.get_runs(limit=100)):
            stats = instance.get_run_stats(run.run_id)
            if not stats.start_time or stats.start_time < since - 1:
                continue
            end = stats.end_time or stats.start_time
            events: dict[str, int] = {}
            for entry in instance.all_logs(run.run_id):
                kind = entry.dagster_event.event_type_value if entry.dagster_event else "log message"
                events[kind] = events.get(kind, 0) + 1
            runs.append({"run_id": run.run_id, "status": run.status.value, "start": stats.start_time,
                         "end": end, "seconds": end - stats.start_time, "events": events})
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time is None or step.end_time is None:
                    continue
                seconds = step.end_time - step.start_time
                steps[step.step_key] = steps.get(step.step_key, 0.0) + seconds
                stage = stage_of_step(step.step_key, env)
                stages[stage] = stages.get(stage, 0.0) + seconds
    finally:
        instance.dispose()
    return stages, steps, runs


def dbt_log_phases(log: Path) -> dict:
    """From dbt's own log (JSON lines) of one invocation: seconds from dbt's start until the
    first node runs (start-up + parsing), whether it re-parsed the project and why."""
    first = ready = None
    reparse: list[str] = []
    try:
        with open(log, encoding="utf-8") as fh:
            for line in fh:
                try:
                    info = json.loads(line)["info"]
                except (ValueError, KeyError):
                    continue
                ts = dt.datetime.fromisoformat(info["ts"].replace("Z", "+00:00")).timestamp()
                first = first if first is not None else ts
                if info["name"] == "UnableToPartialParse":
                    reparse.append(info["msg"])
                elif info["name"] == "ConcurrencyLine" and ready is None:
                    ready = ts
    except OSError:
        return {}
    if first is None or ready is None:
        return {}
    return {"startup_and_parse_s": round(ready - first, 2), "full_reparse": bool(reparse), "reparse_reasons": reparse}


def dbt_timing(run_ids: list[str]) -> dict:
    """dbt's run_results.json of these Dagster runs: elapsed, seconds and count per resource
    type (model, test, unit_test, seed), and the slowest models."""
    target = ROOT / "dbt_project" / "target"
    out: dict = {"elapsed_s": 0.0, "by_type": {}, "slowest_models": []}
    models = []
    for run_id in run_ids:
        for folder in target.glob(f"*-{run_id[:7]}-*"):
            try:
                results = json.loads((folder / "run_results.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            out["elapsed_s"] += results.get("elapsed_time", 0.0)
            out.update(dbt_log_phases(folder / "dbt.log"))
            for r in results.get("results", []):
                kind = r["unique_id"].split(".")[0]
                count, seconds = out["by_type"].get(kind, (0, 0.0))
                out["by_type"][kind] = (count + 1, seconds + r.get("execution_time", 0.0))
                if kind == "model":
                    models.append((r.get("execution_time", 0.0), r["unique_id"].split(".")[-1]))
    out["by_type"] = {k: {"count": c, "seconds": round(t, 2)} for k, (c, t) in out["by_type"].items()}
    out["slowest_models"] = [[name, round(t, 2)] for t, name in sorted(models, reverse=True)[:8]]
    return out if out["by_type"] else {}


@dataclass
class Workspace:
    """One warehouse + Dagster instance over one landing folder."""

    root: Path
    landing: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def snapshot(self) -> Path:
        return self.root / "warehouse_snapshot"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(CARTERA_LANDING=str(self.landing), CARTERA_WAREHOUSE=str(self.warehouse),
                   CARTERA_DUCKDB_PATH=str(self.warehouse / "cartera.duckdb"),
                   DAGSTER_HOME=str(self.dagster_home), CARTERA_PII_KEY=BENCH_PII_KEY)
        env.pop("CARTERA_POSTGRES_DSN", None)  # measure the DuckDB path only
        env.pop("CARTERA_DEMO", None)
        return env

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.dagster_home.mkdir(parents=True)
        (self.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    def run(self, start: str, end: str, *, bulk: bool, label: str, chunk: int | None = None) -> Measurement:
        cmd = [*cartera_command(), "run", "--landing", str(self.landing), "--warehouse", str(self.warehouse),
               "--from", start, "--to", end]
        if bulk:
            cmd.append("--bulk")
            if chunk:
                cmd += ["--chunk", str(chunk)]
        env = self.env()
        m = measure(cmd, env, self.root / "logs" / f"{label}.log")
        if m.returncode != 0:
            raise SystemExit(f"`cartera run --from {start} --to {end}` failed (exit {m.returncode}); "
                             f"log {m.log}:\n{_tail(m.log)}")
        m.stages, m.steps, m.dagster_runs = dagster_stats(self.dagster_home, m.started_at, env)
        m.dbt = dbt_timing([r["run_id"] for r in m.dagster_runs])
        m.rows = input_rows(self.landing, [d for d in landing_dates(self.landing) if start <= d <= end])
        return m

    def save_snapshot(self, loaded: dict) -> None:
        if self.snapshot.exists():
            shutil.rmtree(self.snapshot)
        shutil.copytree(self.warehouse, self.snapshot)
        (self.snapshot / ".history.json").write_text(json.dumps(loaded))

    def loaded_snapshot(self, landing: Path, dates: list[str]) -> "dict | None":
        """The record of a snapshot already holding exactly these history dates of this landing."""
        marker = self.snapshot / ".history.json"
        if not marker.exists():
            return None
        loaded = json.loads(marker.read_text())
        same = (loaded.get("landing"), loaded.get("dates"), loaded.get("last_date_daily")) == (str(landing), dates, True)
        return loaded if same else None

    def restore_snapshot(self) -> None:
        shutil.rmtree(self.warehouse)
        shutil.copytree(self.snapshot, self.warehouse)


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs: list[Measurement]) -> dict:
    out = {
        "wall_s": spread([m.wall_s for m in runs]),
        "peak_rss_tree_mb": spread([m.peak_rss_tree_mb for m in runs]),
        "peak_rss_process_mb": spread([m.peak_rss_process_mb for m in runs]),
        "overhead_s": spread([m.overhead_s for m in runs]),
        "cpu_s": spread([m.cpu_s for m in runs]),
        "rows_per_s": spread([m.rows / m.wall_s for m in runs]) if runs[0].rows else None,
        "stages_s": {},
        "runs": [asdict(m) for m in runs],
    }
    parts = [m.overhead_parts() for m in runs]
    if all(parts):
        out["overhead_parts_s"] = {k: spread([p[k] for p in parts]) for k in parts[0]}
    for stage in sorted({s for m in runs for s in m.stages}, key=lambda s: (s not in STAGES, STAGES.index(s) if s in STAGES else 0, s)):
        out["stages_s"][stage] = spread([m.stages.get(stage, 0.0) for m in runs])
    return out


def fmt(s: dict | None, unit: str = "s", digits: int = 1) -> str:
    if not s:
        return "n/a"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f} {unit}"
    return f"{s['median']:.{digits}f} {unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, n={s['n']})"


def print_summary(title: str, summary: dict) -> None:
    print(f"  {title}")
    print(f"    wall            {fmt(summary['wall_s'])}")
    for stage, s in summary["stages_s"].items():
        print(f"    {stage:<15} {fmt(s)}")
    print(f"    other           {fmt(summary['overhead_s'])}")
    for part, s in summary.get("overhead_parts_s", {}).items():
        print(f"      {part[:-2]:<13} {fmt(s)}")
    print(f"    CPU (user+sys)  {fmt(summary['cpu_s'])}")
    dbt = summary["runs"][-1].get("dbt") or {}
    if dbt:
        kinds = ", ".join(f"{k} {v['count']} in {v['seconds']:.1f}s" for k, v in sorted(dbt["by_type"].items()))
        print(f"    dbt (last run)  elapsed {dbt['elapsed_s']:.1f}s: {kinds}")
        if "startup_and_parse_s" in dbt:
            print(f"      start-up + parse {dbt['startup_and_parse_s']:.1f}s, "
                  + ("full re-parse: " + "; ".join(dbt["reparse_reasons"]) if dbt["full_reparse"] else "partial parse"))
    runs_ = summary["runs"][-1].get("dagster_runs") or []
    if runs_ and runs_[-1].get("events"):
        events = runs_[-1]["events"]
        print(f"    Dagster events  {sum(events.values())} stored (last run): "
              + ", ".join(f"{k} {v}" for k, v in sorted(events.items(), key=lambda kv: -kv[1])[:5]))
        print("      slowest models: " + ", ".join(f"{n} {t:.2f}s" for n, t in dbt["slowest_models"][:5]))
    print(f"    peak RSS tree   {fmt(summary['peak_rss_tree_mb'], 'MB', 0)}")
    print(f"    peak RSS 1 proc {fmt(summary['peak_rss_process_mb'], 'MB', 0)}")
    by_process = summary["runs"][-1].get("peak_rss_by_process_mb") or {}
    if by_process:
        print("      by process (last run): " + ", ".join(f"{k} {v:.0f} MB" for k, v in
                                                         sorted(by_process.items(), key=lambda kv: -kv[1])[:4]))
    if summary.get("rows_per_s"):
        print(f"    input rows/s    {fmt(summary['rows_per_s'], 'rows/s', 0)}")


def verdict(name: str, value: float, limit: float, text: str, higher_is_better: bool = False) -> dict:
    met = value >= limit if higher_is_better else value <= limit
    print(f"    target {name}: {text} -> {'MET' if met else 'NOT MET'}")
    return {"name": name, "value": value, "limit": limit, "met": met, "text": text}


# ---------------------------------------------------------------------------------------
# Scenario building blocks
# ---------------------------------------------------------------------------------------
@dataclass
class Context:
    workdir: Path
    repeat: int
    seed: int
    keep: bool
    check: bool = False

    history_chunk: int | None = None
    reuse: bool = False

    def workspace(self, name: str, landing: Path, history: "list[str] | None" = None) -> Workspace:
        ws = Workspace(self.workdir / name, landing)
        if self.reuse and history and ws.loaded_snapshot(landing, history):
            return ws  # --reuse: the history loaded by an earlier --keep run of this scale
        ws.reset()
        return ws

    def done(self, ws: Workspace) -> None:
        if not self.keep:
            shutil.rmtree(ws.root, ignore_errors=True)


def daily_after_history(ctx: Context, name: str, landing: Path, history: int, repeat: int) -> tuple[Workspace, dict]:
    """Load ``history`` dates (timed, reported: all but the last in bulk, in runs of
    ``--history-chunk`` dates if set, the last as a daily run), then time the next date's daily
    run ``repeat`` times, each on a fresh copy of the loaded warehouse."""
    dates = landing_dates(landing)
    if len(dates) <= history:
        raise SystemExit(f"{landing} has {len(dates)} dates; need {history + 1}")
    ws = ctx.workspace(name, landing, dates[:history])
    daily = dates[history]
    load = None
    reused = ws.loaded_snapshot(landing, dates[:history]) if history and ctx.reuse else None
    loaded = None
    if reused:
        print(f"  reusing {history} date(s) of history loaded earlier in {reused['seconds']:.1f}s ({ws.snapshot})", flush=True)
    elif history:
        # All but the last history date in bulk, then the last one as a daily run: the measured
        # day follows a daily run, as in production (publish then replays one date, not a chunk).
        how = f"bulk runs of {ctx.history_chunk} dates" if ctx.history_chunk else "one bulk run"
        print(f"  loading {history} date(s) of history {dates[0]}..{dates[history - 1]} ({how}, "
              "the last date as a daily run) ...", flush=True)
        load = ws.run(dates[0], dates[history - 2], bulk=True, label="history",
                      chunk=ctx.history_chunk) if history > 1 else None
        last = ws.run(dates[history - 1], dates[history - 1], bulk=False, label="history-last")
        seconds = (load.wall_s if load else 0.0) + last.wall_s
        peak = max(load.peak_rss_tree_mb if load else 0.0, last.peak_rss_tree_mb)
        load = load or last
        print(f"  history loaded in {seconds:.1f}s, peak {peak:.0f} MB", flush=True)
        loaded = {"landing": str(landing), "dates": dates[:history], "seconds": seconds,
                  "peak_rss_tree_mb": peak, "chunk": ctx.history_chunk, "last_date_daily": True}
        ws.save_snapshot(loaded)
    runs = []
    for i in range(repeat):
        if (history and i) or reused:
            ws.restore_snapshot()
        elif not history and i:
            shutil.rmtree(ws.warehouse)
        m = ws.run(daily, daily, bulk=False, label=f"daily-{i + 1}")
        print(f"  daily run {daily} #{i + 1}: {m.wall_s:.1f}s, peak {m.peak_rss_tree_mb:.0f} MB", flush=True)
        runs.append(m)
    result = {"daily_date": daily, "history_dates": history, "loans_on_date": loan_rows(landing, daily),
              "history_load": asdict(load) if load else None, "daily": summarise(runs)}
    if load:
        result["history_load"]["stages"] = load.stages
    if reused:
        result["history_reused"] = reused
    elif history:
        result["history"] = loaded  # seconds, peak, chunk
    if ctx.check:  # the pandas reference as an oracle on this date (untimed)
        from benchmarks.pandas_reference import compute_segment_assignments

        comparison = compare(compute_segment_assignments(landing, daily),
                             load_published(ws.warehouse / "serving.duckdb", daily), "reference", "cartera")
        print("  check: " + comparison.summary().replace("\n", "\n  "), flush=True)
        result["check"] = comparison.to_json()
    return ws, result


def reference_vs_cartera(ws: Workspace, day: str, repeat: int, label: str) -> dict:
    """Time the pandas reference for ``day`` (subprocess) and compare with cartera's rows."""
    import pyarrow.parquet as pq

    out = ws.root / f"reference-{day}.parquet"
    runs = []
    for i in range(repeat):
        m = measure([sys.executable, str(BENCH_DIR / "pandas_reference.py"), "--landing", str(ws.landing),
                     "--date", day, "--out", str(out)], ws.env(), ws.root / "logs" / f"{label}-reference-{i + 1}.log")
        if m.returncode != 0:
            raise SystemExit(f"pandas reference failed for {day}; log {m.log}:\n{_tail(m.log)}")
        m.rows = input_rows(ws.landing, [d for d in landing_dates(ws.landing) if d <= day])
        print(f"  pandas reference {day} #{i + 1}: {m.wall_s:.1f}s, peak {m.peak_rss_tree_mb:.0f} MB", flush=True)
        runs.append(m)
    comparison = compare(pq.read_table(out), load_published(ws.warehouse / "serving.duckdb", day),
                         "reference", "cartera")
    print("  " + comparison.summary().replace("\n", "\n  "), flush=True)
    summary = summarise(runs)
    summary.pop("stages_s")
    return {"reference": summary, "comparison": comparison.to_json()}


def single_query_vs_transform(ws: Workspace, day: str, repeat: int) -> dict:
    """Time single_query.sql for ``day`` on the warehouse's raw tables; compare its rows."""
    import duckdb

    sql = SINGLE_QUERY.read_text(encoding="utf-8")
    times, table = [], None
    for _ in range(repeat):
        con = duckdb.connect(str(ws.warehouse / "cartera.duckdb"), read_only=True)
        try:
            began = time.perf_counter()
            table = con.sql(sql, params={"as_of_date": day}).to_arrow_table()
            times.append(time.perf_counter() - began)
        finally:
            con.close()
    comparison = compare(table, load_published(ws.warehouse / "serving.duckdb", day), "single_query", "cartera")
    print(f"  single query {day}: {fmt(spread(times))}", flush=True)
    print("  " + comparison.summary().replace("\n", "\n  "), flush=True)
    return {"single_query_s": spread(times), "comparison": comparison.to_json()}


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------
def scenario_smoke(ctx: Context, loans: int, days: int) -> dict:
    """Tiny run of every code path of the harness, plus reference == cartera on all dates."""
    landing = landing_for(ctx.workdir, loans, days, ctx.seed)
    ws, result = daily_after_history(ctx, "smoke", landing, days - 1, max(1, ctx.repeat))
    print_summary(f"daily run after {days - 1} date(s), {result['loans_on_date']:,} loans", result["daily"])
    result["comparisons"] = {}
    for day in landing_dates(landing)[:days]:
        from benchmarks.pandas_reference import compute_segment_assignments

        cmp_ = compare(compute_segment_assignments(landing, day),
                       load_published(ws.warehouse / "serving.duckdb", day), "reference", "cartera")
        print(f"  {day}: " + cmp_.summary().replace("\n", "\n  "), flush=True)
        result["comparisons"][day] = cmp_.to_json()
    result.update(reference_vs_cartera(ws, result["daily_date"], 1, "smoke"))
    result.update(single_query_vs_transform(ws, result["daily_date"], 1))
    result["workspace"] = {"landing": str(landing), "warehouse": str(ws.warehouse)}
    result["targets"] = [verdict("reference == cartera", float(all(c["identical"] for c in result["comparisons"].values())),
                                 1.0, "identical on every date", higher_is_better=True)]
    ctx.done(ws)
    return result


def scenario_b1(ctx: Context, loans: int, days: int) -> dict:
    landing = landing_for(ctx.workdir, loans, days + 1, ctx.seed)
    ws, result = daily_after_history(ctx, "B1", landing, days, ctx.repeat)
    print_summary(f"daily run after {days} dates, {result['loans_on_date']:,} loans", result["daily"])
    d = result["daily"]
    result["targets"] = [
        verdict("wall", d["wall_s"]["median"], 30.0, f"median {d['wall_s']['median']:.1f} s <= 30 s"),
        verdict("memory", d["peak_rss_tree_mb"]["median"] / 1024, 4.0,
                f"peak RSS {d['peak_rss_tree_mb']['median'] / 1024:.2f} GB <= 4 GB"),
    ]
    ctx.done(ws)
    return result


def scenario_b2(ctx: Context, loans: int, days: int) -> dict:
    short = min(30, days // 2)
    landing = landing_for(ctx.workdir, loans, days + 1, ctx.seed)
    results = {}
    for history in (short, days):
        ws, results[f"after_{history}"] = daily_after_history(ctx, f"B2-{history}", landing, history, ctx.repeat)
        print_summary(f"daily run after {history} dates", results[f"after_{history}"]["daily"])
        ctx.done(ws)
    a = results[f"after_{short}"]["daily"]["wall_s"]["median"]
    b = results[f"after_{days}"]["daily"]["wall_s"]["median"]
    ta = results[f"after_{short}"]["daily"]["stages_s"].get("transform", {}).get("median")
    tb = results[f"after_{days}"]["daily"]["stages_s"].get("transform", {}).get("median")
    ca = results[f"after_{short}"]["daily"]["cpu_s"]["median"]
    cb = results[f"after_{days}"]["daily"]["cpu_s"]["median"]
    results["ratio_wall"] = b / a
    results["ratio_transform"] = tb / ta if ta and tb else None
    results["ratio_cpu"] = cb / ca
    print(f"  ratio after {days} / after {short}: wall {b / a:.2f}, CPU {cb / ca:.2f}"
          + (f", transform {tb / ta:.2f}" if ta and tb else ""))
    results["targets"] = [verdict("history ratio", b / a, 1.3, f"{b / a:.2f} <= 1.3")]
    return results


def scenario_b3(ctx: Context, loans: int, days: int) -> dict:
    landing = landing_for(ctx.workdir, loans, days + 1, ctx.seed)  # B2's landing: one date more
    dates = landing_dates(landing)[:days]
    runs = []
    for i in range(ctx.repeat):
        ws = ctx.workspace("B3", landing)
        how = f" in bulk runs of {ctx.history_chunk} dates" if ctx.history_chunk else " (one bulk run)"
        print(f"  bulk backfill {dates[0]}..{dates[-1]}{how} #{i + 1} ...", flush=True)
        m = ws.run(dates[0], dates[-1], bulk=True, label=f"bulk-{i + 1}", chunk=ctx.history_chunk)
        print(f"  bulk backfill #{i + 1}: {m.wall_s:.1f}s, peak {m.peak_rss_tree_mb:.0f} MB", flush=True)
        runs.append(m)
        ctx.done(ws)
    summary = summarise(runs)
    print_summary(f"bulk backfill of {days} dates x {loans:,} loans", summary)
    return {"dates": days, "chunk": ctx.history_chunk, "bulk": summary,
            "targets": [verdict("wall", summary["wall_s"]["median"], 600.0,
                                f"median {summary['wall_s']['median'] / 60:.1f} min <= 10 min")]}


def scenario_b4(ctx: Context, loans: int, days: int) -> dict:
    landing = landing_for(ctx.workdir, loans, days, ctx.seed)
    ws, result = daily_after_history(ctx, "B4", landing, days - 1, ctx.repeat)
    print_summary(f"cartera daily run after {days - 1} dates, {result['loans_on_date']:,} loans", result["daily"])
    result.update(reference_vs_cartera(ws, result["daily_date"], ctx.repeat, "B4"))
    cw, rw = result["daily"]["wall_s"]["median"], result["reference"]["wall_s"]["median"]
    cm, rm = result["daily"]["peak_rss_tree_mb"]["median"], result["reference"]["peak_rss_tree_mb"]["median"]
    print(f"  pandas reference: {fmt(result['reference']['wall_s'])}, peak {fmt(result['reference']['peak_rss_tree_mb'], 'MB', 0)}")
    result["targets"] = [
        verdict("identical", float(result["comparison"]["identical"]), 1.0, "identical results", higher_is_better=True),
        verdict("speed", rw / cw, 5.0, f"cartera {rw / cw:.1f}x faster (>= 5x)", higher_is_better=True),
        verdict("memory", cm / rm, 1 / 3, f"cartera uses {cm / rm:.2f} of the reference's peak (<= 0.33)"),
    ]
    ctx.done(ws)
    return result


def scenario_b5(ctx: Context, loans: int, days: int) -> dict:
    landing = landing_for(ctx.workdir, loans, days + 1, ctx.seed)
    ws, result = daily_after_history(ctx, "B5", landing, days, ctx.repeat)
    print_summary(f"daily run of {result['loans_on_date']:,} loans after {days} date(s)", result["daily"])
    result["targets"] = [verdict("wall", result["daily"]["wall_s"]["median"], 10.0,
                                 f"median {result['daily']['wall_s']['median']:.1f} s <= 10 s")]
    ctx.done(ws)
    return result


def scenario_b6(ctx: Context, loans: int, days: int) -> dict:
    landing = landing_for(ctx.workdir, loans, days, ctx.seed)
    ws, result = daily_after_history(ctx, "B6", landing, days - 1, ctx.repeat)
    print_summary(f"daily run after {days - 1} dates, {result['loans_on_date']:,} loans", result["daily"])
    result.update(single_query_vs_transform(ws, result["daily_date"], ctx.repeat))
    transform = result["daily"]["stages_s"].get("transform", {}).get("median")
    query = result["single_query_s"]["median"]
    ratio = transform / query if transform else float("inf")
    result["targets"] = [
        verdict("transform vs single query", ratio, 2.0, f"transform {transform:.2f} s / query {query:.2f} s = {ratio:.1f}x (<= 2x)"),
        verdict("single query identical", float(result["comparison"]["identical"]), 1.0, "identical rows",
                higher_is_better=True),
    ]
    ctx.done(ws)
    return result


SCENARIOS = {  # name -> (function, default loans, default days, description)
    "smoke": (scenario_smoke, 300, 3, "harness self-test: 300 loans x 3 dates, reference == cartera"),
    "B5": (scenario_b5, 1_000, 1, "fixed cost: a 1,000-loan daily run end to end (after 1 date)"),
    "B6": (scenario_b6, 100_000, 60, "transform stage vs one hand-written DuckDB query (100,000 loans, 60 dates)"),
    "B2": (scenario_b2, 100_000, 250, "daily run after 30 vs after 250 dates of history (100,000 loans)"),
    "B3": (scenario_b3, 100_000, 250, "bulk backfill of 250 dates x 100,000 loans"),
    "B4": (scenario_b4, 200_000, 250, "daily run vs pandas reference, 200,000 loans x 250 dates"),
    "B1": (scenario_b1, 1_000_000, 30, "1,000,000 loans, 30 dates loaded, one daily run"),
}


# ---------------------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------------------
def machine() -> dict:
    cpu = cpu_model()
    mem_gb = round(memory_gib(), 1)
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "memory_gb": mem_gb, "os": platform.platform(), "load_avg": os.getloadavg()}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("duckdb", "dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "great-expectations",
                "pandas", "pyarrow", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        out["cartera_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                               capture_output=True, text=True).stdout.strip() or None
        out["cartera_worktree_dirty"] = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT,
                                                            capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cartera benchmarks (see benchmarks/README.md)")
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"],
                        help="which scenario (default all, at the issue's scales: hours on 2 cores)")
    parser.add_argument("--loans", type=int, help="override the scenario's number of loans")
    parser.add_argument("--days", type=int, help="override the scenario's number of history dates")
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions (median, min, max)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="generated data and warehouses")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON result goes")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses after each scenario")
    parser.add_argument("--history-chunk", type=int, metavar="N",
                        help="load the history in bulk runs of at most N dates (`cartera run --bulk --chunk N`)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the history snapshot a --keep run left for the same scale")
    parser.add_argument("--check", action="store_true",
                        help="also compare each measured date with the pandas reference (untimed)")
    args = parser.parse_args(argv)

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    ctx = Context(workdir=args.workdir.resolve(), repeat=args.repeat, seed=args.seed, keep=args.keep,
                  check=args.check, history_chunk=args.history_chunk, reuse=args.reuse)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    report = {"started_at": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
              "versions": versions(), "arguments": {k: str(v) for k, v in vars(args).items()}, "scenarios": {}}
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, load {m['load_avg'][0]:.1f}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v is not None))
    args.results.mkdir(parents=True, exist_ok=True)
    out_path = args.results / f"{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    failed = False
    for name in names:
        function, loans, days, description = SCENARIOS[name]
        loans, days = args.loans or loans, args.days or days
        print(f"\n== {name}: {description}" + (f" [scaled: {loans:,} loans, {days} dates]"
                                                 if (args.loans or args.days) else ""), flush=True)
        began = time.perf_counter()
        result = function(ctx, loans, days)
        result.update(loans=loans, days=days, seconds=time.perf_counter() - began)
        report["scenarios"][name] = result
        failed |= any(not t["met"] for t in result.get("targets", []) if t["name"].startswith(("identical", "reference", "single")))
        failed |= any(not r.get("check", {"identical": True})["identical"]
                      for r in (result, *[v for v in result.values() if isinstance(v, dict)]))
        report["machine"]["load_avg_end"] = os.getloadavg()
        out_path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {out_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
