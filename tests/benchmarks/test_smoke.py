"""The benchmark harness runs end to end at tiny scale, and the pandas reference agrees with
cartera's published segment_assignments on every loan, column and date.

The harness runs as ``make bench`` would (a subprocess of benchmarks/run.py driving the real
``cartera generate`` and ``cartera run``), so it cannot rot unnoticed. The equality check
below is done here, independently of benchmarks/compare.py: both sides are turned into
plain Python values and compared row by row.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.pandas_reference import compute_segment_assignments  # noqa: E402

pytestmark = pytest.mark.slow

# computed by both sides from the inputs; customer_key, reason and rulebook_version are cartera's own
COLUMNS = [
    "as_of_date", "loan_id", "credit_type", "product_code", "currency", "department_code", "balance_pen", "dpd",
    "dpd_bucket", "max_dpd_12m", "delinquency_episodes_12m", "paid_90d_pen", "days_since_last_payment",
    "sbs_category", "sbs_category_aligned", "provision_rate", "provision_pen", "ifrs9_stage", "segment_code",
    "rule_id", "strategy_code", "channel", "offer", "assignee", "next_contact_date",
]


def plain(value):
    """One Python value per cell: None, int, Decimal, date or str."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def rows_by_loan(records) -> dict:
    return {r["loan_id"]: {c: plain(r[c]) for c in COLUMNS} for r in records}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--scenario", "smoke", "--repeat", "1",
         "--workdir", str(tmp / "work"), "--results", str(tmp / "results"), "--keep"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    [result_file] = (tmp / "results").glob("*.json")
    return json.loads(result_file.read_text()), proc.stdout


def test_harness_reports_stages_memory_machine_and_versions(smoke):
    report, stdout = smoke
    result = report["scenarios"]["smoke"]
    daily = result["daily"]
    stages = daily["stages_s"]
    for stage in ("ingest", "transform", "publish", "report"):
        assert stages[stage]["median"] > 0, f"no time recorded for {stage}: {stages}"
    # the stages happen inside the command's wall time
    assert sum(s["median"] for s in stages.values()) < daily["wall_s"]["median"]
    # the tree includes the largest process (sampling can only miss a short peak)
    assert daily["peak_rss_process_mb"]["median"] > 100
    assert daily["peak_rss_tree_mb"]["median"] > 0.8 * daily["peak_rss_process_mb"]["median"]
    assert daily["rows_per_s"]["median"] > 0
    assert result["loans_on_date"] >= 250
    assert report["machine"]["cores"] >= 1 and report["machine"]["memory_gb"] > 0
    assert report["versions"]["dagster"] == "1.13.27" and report["versions"]["duckdb"]
    assert "transform" in stdout and "peak RSS" in stdout
    # the harness's own comparisons ran and found no difference
    assert result["comparison"]["identical"], result["comparison"]
    assert all(c["identical"] for c in result["comparisons"].values()), result["comparisons"]


def test_pandas_reference_equals_cartera_on_every_date(smoke):
    report, _ = smoke
    result = report["scenarios"]["smoke"]
    landing = Path(result["workspace"]["landing"])
    serving = Path(result["workspace"]["warehouse"]) / "serving.duckdb"
    con = duckdb.connect(str(serving), read_only=True)
    try:
        dates = [r[0] for r in con.execute("select distinct as_of_date from segment_assignments order by 1").fetchall()]
        assert len(dates) == 3
        segments = set()
        for day in dates:
            cur = con.execute(f"select {', '.join(COLUMNS)} from segment_assignments where as_of_date = ?", [day])
            names = [d[0] for d in cur.description]
            published = rows_by_loan(dict(zip(names, row)) for row in cur.fetchall())
            reference = rows_by_loan(compute_segment_assignments(landing, day).to_dict("records"))
            assert published.keys() == reference.keys(), f"{day}: different loans"
            for loan_id, expected in reference.items():
                assert published[loan_id] == expected, (
                    f"{day} {loan_id}: " + ", ".join(f"{c}: reference={expected[c]!r} cartera={published[loan_id][c]!r}"
                                                     for c in COLUMNS if expected[c] != published[loan_id][c]))
            segments |= {r["segment_code"] for r in reference.values()}
    finally:
        con.close()
    # the data exercises more than the catch-all rule
    assert len(segments) >= 4, segments
