"""Freshness: is the newest published date as recent as the business calendar says?

Rule: after the deadline (10:00 America/Lima) the serving file must hold the previous
business date; before it, the business date before that. A Monday at 11:00 expects
Friday's data, a Tuesday at 09:00 still accepts Friday's.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from orchestration.calendar import previous_business_day
from orchestration.partitions import TIMEZONE

LIMA = ZoneInfo(TIMEZONE)
DEADLINE = dt.time.fromisoformat(os.environ.get("CARTERA_FRESHNESS_DEADLINE", "10:00"))


def expected_published_date(now: dt.datetime, deadline: dt.time = DEADLINE) -> dt.date:
    """The newest business date that should be published at ``now`` (any timezone)."""
    local = now.astimezone(LIMA) if now.tzinfo else now.replace(tzinfo=LIMA)
    expected = previous_business_day(local.date())
    if local.time() < deadline:
        expected = previous_business_day(expected)
    return expected


@dataclass(frozen=True)
class Freshness:
    fresh: bool
    latest: dt.date | None
    expected: dt.date
    message: str


def freshness(latest: dt.date | None, now: dt.datetime, deadline: dt.time = DEADLINE) -> Freshness:
    expected = expected_published_date(now, deadline)
    if latest is not None and latest >= expected:
        return Freshness(True, latest, expected, f"fresh: latest published {latest} (expected {expected})")
    shown = f"latest published date is {latest}" if latest else "nothing is published yet"
    return Freshness(
        False,
        latest,
        expected,
        f"stale: {shown}, {expected} is due "
        f"(at {now.astimezone(LIMA):%Y-%m-%d %H:%M} Lima; deadline {deadline:%H:%M})",
    )
