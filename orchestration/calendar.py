"""Business calendar shared by the generator, the schedule and the sensor.

The holidays come from the same dbt seed the models use (``dbt_project/seeds/pe_holidays.csv``),
so there is exactly one calendar in the project.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOLIDAYS_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "pe_holidays.csv"


@lru_cache(maxsize=4)
def national_holidays(path: Path = HOLIDAYS_SEED) -> frozenset[dt.date]:
    with open(path, encoding="utf-8", newline="") as fh:
        return frozenset(dt.date.fromisoformat(r["holiday_date"]) for r in csv.DictReader(fh))


def holiday_years(path: Path = HOLIDAYS_SEED) -> frozenset[int]:
    return frozenset(d.year for d in national_holidays(path))


def is_business_day(day: dt.date) -> bool:
    """Monday to Friday and not a Peruvian national holiday."""
    if day.year not in holiday_years():
        raise ValueError(
            f"the holiday calendar ({HOLIDAYS_SEED.name}) has no entries for {day.year}; "
            "add that year's national holidays to the seed"
        )
    return day.weekday() < 5 and day not in national_holidays()


def next_business_day(day: dt.date) -> dt.date:
    nxt = day + dt.timedelta(days=1)
    while not is_business_day(nxt):
        nxt += dt.timedelta(days=1)
    return nxt


def previous_business_day(day: dt.date) -> dt.date:
    prev = day - dt.timedelta(days=1)
    while not is_business_day(prev):
        prev -= dt.timedelta(days=1)
    return prev


def business_days(start: dt.date, count: int) -> list[dt.date]:
    """The first ``count`` business days on or after ``start``."""
    out: list[dt.date] = []
    day = start
    while len(out) < count:
        if is_business_day(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return out
