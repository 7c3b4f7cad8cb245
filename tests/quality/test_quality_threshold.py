"""The quarantine threshold: below it the run goes on without the bad rows; above it the
run stops, raw.* keeps its previous state and nothing downstream runs."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from drop_writer import valid_tables, write_drop
from ingest_harness import checks, count, failure_description, query, resource, run
from orchestration.partitions import business_date_partitions, single_run_backfill

DAY = "2026-01-05"
LOANS = 400
# valid_tables' payments point at loans 0, 3, ..., 15: break loans past those
BAD_FROM = 100


def drop_with_bad_loans(cartera, bad: int) -> dict:
    tables = valid_tables(DAY, loans=LOANS)
    for i in range(BAD_FROM, BAD_FROM + bad):
        tables["loans"][i]["credit_type"] = "consumo"
    write_drop(cartera.landing_path, DAY, tables)
    return tables


def downstream_asset(marker: Path):
    """Stands for transform/publish: records every run it executes in."""

    @dg.asset(
        deps=[dg.AssetKey(["raw", "loans"])],
        partitions_def=business_date_partitions,
        backfill_policy=single_run_backfill,
    )
    def downstream(context) -> None:
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(context.run_id + "\n")

    return downstream


@pytest.mark.parametrize("bad", [2, 4], ids=["0.5%", "exactly 1%"])
def test_at_or_below_threshold_the_run_goes_on_without_the_bad_rows(tmp_path, bad):
    cartera = resource(tmp_path)  # default threshold: 1% of a file's rows
    marker = tmp_path / "downstream.txt"
    drop_with_bad_loans(cartera, bad)
    result = run(cartera, DAY, extra_assets=[downstream_asset(marker)])
    assert result.success
    assert marker.read_text().split() == [result.run_id]
    assert query(cartera, "SELECT rows_read, rows_quarantined, rows_landed FROM raw.ingest_files "
                          "WHERE file_name = 'loans.csv'") == [(LOANS, bad, LOANS - bad)]
    assert count(cartera, "raw.loans", DAY) == LOANS - bad
    quarantined = query(cartera, "SELECT line_number FROM raw.quarantine ORDER BY 1")
    assert [line for (line,) in quarantined] == [i + 2 for i in range(BAD_FROM, BAD_FROM + bad)]
    evaluation = checks(result)["loans_rules"]
    assert evaluation.passed
    assert evaluation.metadata["failing_count"].value == bad
    assert evaluation.metadata["quarantined_share"].value == pytest.approx(bad / LOANS)


def test_above_threshold_the_run_stops_and_nothing_changes(tmp_path):
    cartera = resource(tmp_path)
    marker = tmp_path / "downstream.txt"
    downstream = downstream_asset(marker)
    drop_with_bad_loans(cartera, 0)
    first = run(cartera, DAY, extra_assets=[downstream])
    assert first.success
    before = {t: query(cartera, f"SELECT * FROM {t} ORDER BY ALL")
              for t in ("raw.loans", "raw.payments", "raw.customers", "raw.fx_rates", "raw.ingest_files")}

    drop_with_bad_loans(cartera, 20)  # 5% of loans.csv
    result = run(cartera, DAY, extra_assets=[downstream])
    assert not result.success
    message = (
        "loans.csv: 20 of 400 rows (5.00%) broke row rules, above the 1.00% quarantine "
        "threshold (most frequent: enum:credit_type 20)"
    )
    assert failure_description(result) == f"{DAY}: drop rejected: {message}"

    # nothing downstream ran, raw.* is exactly what the previous run landed
    assert marker.read_text().split() == [first.run_id]
    assert not [e for e in result.all_events if e.step_key == "downstream" and e.is_step_success]
    for table, rows in before.items():
        assert query(cartera, f"SELECT * FROM {table} ORDER BY ALL") == rows, table
    # ... while the rejection and its quarantine rows are on record
    assert query(cartera, "SELECT status, message FROM raw.drops WHERE run_id = ?", [result.run_id]) == [
        ("rejected", message)
    ]
    rows = query(cartera, "SELECT line_number, rule, raw_values FROM raw.quarantine WHERE run_id = ? "
                          "ORDER BY line_number", [result.run_id])
    assert [(line, rule) for line, rule, _ in rows] == [
        (i + 2, "enum:credit_type") for i in range(BAD_FROM, BAD_FROM + 20)
    ]
    assert json.loads(rows[0][2])["credit_type"] == "consumo"

    evaluation = checks(result)["loans_rules"]
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failing_count"].value == 20
    assert checks(result)["customers_rules"].passed


def test_threshold_is_configurable(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.10)
    drop_with_bad_loans(cartera, 20)
    assert run(cartera, DAY).success
    assert count(cartera, "raw.loans", DAY) == LOANS - 20
