"""Helpers for the ops tests: landing folders and a serving file in tmp_path."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.config import CarteraResource


def _make_drop(landing: Path, day: str, *, complete: bool = True, age_seconds: float = 120) -> Path:
    """A landing folder; files dated ``age_seconds`` ago (a settled copy unless 0)."""
    folder = landing / day
    folder.mkdir(parents=True, exist_ok=True)
    files = {"loans.csv": "loan_id\n", "payments.csv": "payment_id\n",
             "customers.csv": "customer_id\n", "fx_rates.csv": "currency,rate_to_pen\nUSD,3.75\n"}
    if complete:
        files["_control.csv"] = f"file_name,row_count,control_total\nloans.csv,0,0.00\n# {day}\n"
    stamp = time.time() - age_seconds
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        os.utime(folder / name, (stamp, stamp))
    return folder


def _make_serving(warehouse: Path, published: list[str]) -> Path:
    """A serving.duckdb whose run_audit says ``published`` for the given dates."""
    warehouse.mkdir(parents=True, exist_ok=True)
    path = warehouse / "serving.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create or replace table run_audit (run_id varchar, as_of_date date, outcome varchar)")
    for i, day in enumerate(published):
        con.execute("insert into run_audit values (?, ?, 'published')", [f"run{i}", day])
    con.execute("insert into run_audit values ('failed-run', '1999-01-01', 'failed: ingest: x')")
    con.close()
    return path


@pytest.fixture
def places(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    landing.mkdir()
    warehouse.mkdir()
    resource = CarteraResource(landing_dir=str(landing), warehouse_dir=str(warehouse))
    return landing, warehouse, resource


@pytest.fixture
def make_drop():
    return _make_drop


@pytest.fixture
def make_serving():
    return _make_serving
