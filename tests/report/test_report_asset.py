"""The daily_report asset, materialized by Dagster over partition ranges."""

from __future__ import annotations

import datetime as dt

from dagster import AssetKey, DagsterInstance, materialize

from orchestration.config import CarteraResource
from orchestration.partitions import business_date_partitions
from orchestration.report.assets import daily_report, report_assets


def run_range(warehouse, start: str, end: str):
    resource = CarteraResource(landing_dir=str(warehouse.parent / "landing"), warehouse_dir=str(warehouse))
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            report_assets,
            resources={"cartera": resource},
            instance=instance,
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        )
        assert result.success
        mats = result.asset_materializations_for_node("daily_report")
        return mats[-1].metadata if mats else {}


def test_asset_contract():
    assert report_assets == [daily_report]
    spec = daily_report.specs_by_key[AssetKey("daily_report")]
    assert spec.group_name == "report"
    assert daily_report.partitions_def == business_date_partitions
    assert daily_report.backfill_policy is not None and daily_report.backfill_policy.max_partitions_per_run is None
    assert {d.asset_key for d in spec.deps} == {AssetKey("serving_warehouse")}


def test_one_report_per_published_date_in_the_range(warehouse, serving_file):
    _, dates = serving_file
    # a range over a weekend: the Saturday and Sunday have no published data and no report
    start, end = dates[3], dates[5]
    assert (end - start).days > 2  # the fixture's dates straddle a weekend
    meta = run_range(warehouse, start.isoformat(), end.isoformat())
    written = sorted(p.name for p in (warehouse / "reports").glob("*.html"))
    assert written == [f"report_{d}.html" for d in dates[3:6]]
    assert meta["reports"].value == 3 and meta["last_date"].value == end.isoformat()
    assert meta["last_report"].path == str(warehouse / "reports" / f"report_{end}.html")


def test_range_without_published_dates_writes_nothing(warehouse, serving_file, tmp_path):
    _, dates = serving_file
    saturday = dates[0] + dt.timedelta(days=5 - dates[0].weekday())
    meta = run_range(warehouse, saturday.isoformat(), (saturday + dt.timedelta(days=1)).isoformat())
    assert meta["reports"].value == 0
    assert not (warehouse / "reports").exists()

    empty = tmp_path / "empty_warehouse"
    empty.mkdir()
    assert run_range(empty, dates[0].isoformat(), dates[0].isoformat())["reports"].value == 0
