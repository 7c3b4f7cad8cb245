"""Names shared by the job, the CLI, the schedule and the sensor."""

from __future__ import annotations

JOB_NAME = "cartera_daily"

# Run-level retries (Dagster's run retry daemon) are off: a failed date needs a person or
# is retried at step level for transient errors only (see orchestration/ops/retries.py).
RUN_RETRY_TAGS: dict[str, str] = {}

# Tags every cartera run carries (shown and filterable in the Dagster UI).
TAG_AS_OF_DATE = "cartera/as_of_date"  # "2026-01-05" or "2026-01-05..2026-01-30"
TAG_RULEBOOK_VERSION = "cartera/rulebook_version"
TAG_LAUNCHED_BY = "cartera/launched_by"  # cli, schedule, sensor
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


def rulebook_version() -> str:
    """Content hash of the rulebook in force (the same value every assignment records)."""
    try:
        from orchestration.transform.rulebook import load_rulebook
    except ImportError:  # the rulebook module is not there (partial checkout)
        return "unknown"
    try:
        return str(load_rulebook().version)  # reads and validates only; writes nothing
    except ValueError:  # RulebookError: the run will stop on it with the file/line message
        return "invalid"


def run_tags(start: str, end: str | None = None, *, launched_by: str) -> dict[str, str]:
    """Tags for a run over ``start..end`` (one date when ``end`` is None or equal)."""
    end = end or start
    tags = {
        TAG_AS_OF_DATE: start if start == end else f"{start}..{end}",
        TAG_RULEBOOK_VERSION: rulebook_version(),
        TAG_LAUNCHED_BY: launched_by,
    }
    if start != end:
        tags[PARTITION_RANGE_START] = start
        tags[PARTITION_RANGE_END] = end
    return tags


def dates_of_run(tags: dict[str, str]) -> tuple[str | None, str | None]:
    """(first, last) business date of a run from its tags (Dagster's or ours)."""
    if PARTITION_RANGE_START in tags:
        return tags[PARTITION_RANGE_START], tags.get(PARTITION_RANGE_END)
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    value = tags.get(TAG_AS_OF_DATE)
    if value:
        first, _, last = value.partition("..")
        return first, last or first
    return None, None
