"""Business-date partitions shared by every asset.

One partition per calendar day in America/Lima; a day without a landing folder is simply
never run. Every asset accepts a *range* of partitions (``BackfillPolicy.single_run()``):
the daily run is a range of one date, an onboarding backfill is one run over many dates.
"""

from __future__ import annotations

import datetime as dt
import os

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

TIMEZONE = "America/Lima"
PARTITIONS_START = os.environ.get("CARTERA_PARTITIONS_START", "2024-01-01")

business_date_partitions = DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1
)
single_run_backfill = BackfillPolicy.single_run()


def partition_date_range(context: AssetExecutionContext) -> tuple[str, str]:
    """(first, last) ISO dates covered by this run's partition key range."""
    key_range = context.partition_key_range
    return key_range.start, key_range.end


def dates_in_range(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
