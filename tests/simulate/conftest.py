"""One simulated landing shared by the generator tests (generated once per session)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sim_contract import MAIN, read_control, read_rows

from orchestration.simulate import generate_landing


@dataclass
class Drop:
    day: dt.date
    folder: Path
    loans: dict[str, dict]
    loan_rows: list[dict]
    payments: list[dict]
    customers: dict[str, dict]
    customer_rows: list[dict]
    fx: list[dict]
    control: dict
    headers: dict = field(default_factory=dict)


@dataclass
class Landing:
    root: Path
    dates: list[dt.date]
    drops: list[Drop]


def load_landing(root: Path, dates: list[dt.date]) -> Landing:
    drops = []
    for day in dates:
        folder = root / day.isoformat()
        headers, data = {}, {}
        for extract in ("loans", "payments", "customers", "fx_rates"):
            headers[extract], data[extract] = read_rows(folder / f"{extract}.csv")
        drops.append(Drop(
            day=day, folder=folder,
            loans={r["loan_id"]: r for r in data["loans"]}, loan_rows=data["loans"],
            payments=data["payments"],
            customers={r["customer_id"]: r for r in data["customers"]}, customer_rows=data["customers"],
            fx=data["fx_rates"], control=read_control(folder), headers=headers,
        ))
    return Landing(root, dates, drops)


@pytest.fixture(scope="session")
def landing(tmp_path_factory) -> Landing:
    root = tmp_path_factory.mktemp("landing")
    dates = generate_landing(root, **MAIN)
    return load_landing(root, dates)
