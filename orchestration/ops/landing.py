"""What the landing folder holds and which dates still have to run.

Source of truth for "processed": the **serving file** (``<warehouse>/serving.duckdb``). A
date is processed when publish has swapped in a serving file that holds it (its
``run_audit`` row says ``published``). That file is what BI tools see, it is never held open
read-write (publish writes a new file and renames it), so the sensor, the schedule, the
freshness sensor and ``cartera status`` can read it at any moment without colliding with
a running job; and wiping the warehouse makes the dates pending again, as it should.

Order rule: features depend on history, so dates run strictly in date order. The earliest
landing date not yet processed -- complete or not -- is the only one that may run; every
later date waits for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROL_FILE = "_control.csv"
_DATE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# A drop whose files changed less than this many seconds ago may still be being copied.
SETTLE_SECONDS = float(os.environ.get("CARTERA_DROP_SETTLE_SECONDS", "15"))


def parse_drop_name(name: str) -> dt.date | None:
    """The business date a landing folder name stands for, or None unless exactly YYYY-MM-DD."""
    if not _DATE_NAME.fullmatch(name):
        return None
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class Drop:
    """One landing folder ``<landing>/<YYYY-MM-DD>/``."""

    date: dt.date
    path: Path
    complete: bool  # _control.csv exists (it is written last)
    last_change: float  # newest mtime among its files (epoch seconds)
    fingerprint: str  # sha256 prefix of _control.csv ("" when incomplete)

    def settling(self, now: float | None = None, settle_seconds: float = SETTLE_SECONDS) -> bool:
        return ((now or time.time()) - self.last_change) < settle_seconds

    @property
    def iso(self) -> str:
        return self.date.isoformat()


@dataclass
class LandingScan:
    drops: list[Drop] = field(default_factory=list)  # sorted by date
    junk: list[str] = field(default_factory=list)  # entries that are not YYYY-MM-DD folders

    def by_date(self) -> dict[dt.date, Drop]:
        return {d.date: d for d in self.drops}


def scan_landing(landing: Path) -> LandingScan:
    """List the landing folder: valid date folders (sorted) and everything else (junk)."""
    scan = LandingScan()
    landing = Path(landing)
    if not landing.is_dir():
        return scan
    for entry in sorted(landing.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")):
            continue  # hidden copies in flight, OS droppings, metadata such as _generator_manifest.json
        day = parse_drop_name(entry.name)
        if day is None or not entry.is_dir():
            scan.junk.append(entry.name)
            continue
        files = [f for f in entry.iterdir() if f.is_file()]
        control = entry / CONTROL_FILE
        complete = control.is_file()
        mtimes = [f.stat().st_mtime for f in files] or [entry.stat().st_mtime]
        fingerprint = hashlib.sha256(control.read_bytes()).hexdigest()[:12] if complete else ""
        scan.drops.append(Drop(day, entry, complete, max(mtimes), fingerprint))
    return scan


def dates_between(scan: LandingScan, start: dt.date, end: dt.date) -> list[Drop]:
    return [d for d in scan.drops if start <= d.date <= end]


# ---- what is published ------------------------------------------------------------------

def published_dates(serving_db: Path) -> set[dt.date]:
    """Dates the serving file holds as published (empty when there is no serving file yet)."""
    import duckdb

    serving_db = Path(serving_db)
    if not serving_db.exists():
        return set()
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }
        if "run_audit" in tables:
            rows = con.execute(
                "select distinct as_of_date from run_audit where outcome = 'published'"
            ).fetchall()
        elif "segment_assignments" in tables:
            rows = con.execute("select distinct as_of_date from segment_assignments").fetchall()
        else:
            rows = []
    finally:
        con.close()
    return {_as_date(value) for (value,) in rows if value is not None}


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


# ---- what may run next --------------------------------------------------------------------

@dataclass(frozen=True)
class NextDate:
    """The planner's answer: a drop to launch, or why nothing may launch now."""

    drop: Drop | None
    message: str


def next_date_to_run(
    scan: LandingScan,
    processed: set[dt.date],
    *,
    now: float | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> NextDate:
    """Apply the order rule: only the earliest unprocessed landing date may run."""
    pending = [d for d in scan.drops if d.date not in processed]
    if not pending:
        latest = max(processed) if processed else None
        return NextDate(None, f"nothing to run: every landing date is processed (latest {latest})")
    first, later = pending[0], pending[1:]
    waiting = _waiting(later)
    latest_processed = max(processed) if processed else None
    if latest_processed and first.date < latest_processed:
        return NextDate(
            None,
            f"{first.iso} is not processed but the later date {latest_processed} is: history "
            f"would change under it; re-run the range by hand: cartera run --from {first.iso} "
            f"--to {latest_processed}{waiting}",
        )
    if not first.complete:
        return NextDate(
            None,
            f"{first.iso} is incomplete (no {CONTROL_FILE} yet): waiting for it{waiting}",
        )
    if first.settling(now, settle_seconds):
        return NextDate(None, f"{first.iso}: files still changing, waiting for the copy to finish{waiting}")
    return NextDate(first, f"{first.iso} is complete and next in date order{waiting}")


def _waiting(later: list[Drop]) -> str:
    if not later:
        return ""
    names = ", ".join(d.iso for d in later[:5]) + (" ..." if len(later) > 5 else "")
    return f"; later dates wait for it: {names}"
