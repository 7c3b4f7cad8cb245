"""The code location loads, every definition resolves, and the stages connect.

Runs in a subprocess so what gets imported at load time can be inspected on a clean
interpreter (Great Expectations and plotly must stay out of definition loading).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

PROBE = textwrap.dedent(
    """
    import json, sys
    from orchestration.definitions import defs, daily_job
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()
              if graph.get(k).is_materializable}
    deps = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
            for k in graph.get_all_asset_keys()}
    job = defs.resolve_job_def("cartera_daily")
    print(json.dumps({
        "keys": keys, "groups": groups, "deps": deps,
        "checks": sorted(c.to_user_string() for c in graph.asset_check_keys),
        "schedules": [s.name for s in repo.schedule_defs],
        "sensors": [s.name for s in repo.sensor_defs],
        "job_partitioned": job.partitions_def is not None,
        "heavy_imports": sorted(m for m in ("great_expectations", "plotly") if m in sys.modules),
    }))
    """
)


def _load() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_code_location_loads_and_stages_connect():
    info = _load()
    keys = set(info["keys"])
    for key in ("raw/loans", "raw/payments", "raw/customers", "raw/fx_rates",
                "segment_assignments", "segment_summary", "segment_migration", "daily_actions",
                "serving_warehouse", "daily_report"):
        assert key in keys, f"{key} missing from the asset graph"
    # dbt sources resolve to the ingest assets (one lineage from landing file to report)
    assert "raw/loans" in info["deps"]["stg_loans"]
    assert "segment_assignments" in info["deps"]["serving_warehouse"]
    assert "serving_warehouse" in info["deps"]["daily_report"]
    groups = info["groups"]
    assert groups["raw/loans"] == "ingest"
    assert groups["segment_assignments"] == "transform"
    assert groups["serving_warehouse"] == "publish"
    assert groups["daily_report"] == "report"
    assert any(c.endswith("loans_rules") for c in info["checks"])
    assert info["schedules"] and info["sensors"]
    assert info["job_partitioned"]


def test_definition_loading_keeps_heavy_libraries_out():
    assert _load()["heavy_imports"] == []
