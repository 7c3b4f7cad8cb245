"""serving.duckdb: the file BI tools open read-only, replaced whole and atomically.

DuckDB allows one read-write process *or* many read-only ones per file, never both. So
the pipeline never opens the live serving file read-write (it attaches it read-only at
most, which shares the readers' lock). Each publish writes the next state into another
file, then swaps it in with ``os.replace``: a reader that opens ``serving.duckdb`` gets the
old inode or the new one, never a mix, and keeps the state it opened until it reconnects
(all its connections closed: DuckDB shares one database instance per path inside a
process). A crash before the swap leaves the live file untouched.

Two files take turns, so a daily publish costs what the day costs, not the history:

- ``serving.duckdb`` (live) and ``serving.duckdb.standby`` (the previous live file, kept
  as a hard link at each swap). The next publish updates the standby *in place*: it
  replays the dates the last publish changed (copied from the live file) and writes the
  run's dates from the marts, in one transaction, then swaps it in. Measured with 250
  dates x 100k loans (1.6 GB): about the cost of writing two dates, where a full copy
  took 2-9 s on this machine (docs/publish.md).
- Each file carries ``cartera_meta.publish_log`` (generation, publish id, dates). The
  standby is used only if its latest generation is in the live file's log and older
  (same lineage); a standby a killed run left ahead, or one a reader still holds open
  (DuckDB refuses the write lock immediately: the publish never waits), is not touched:
  the publish then falls back to a byte copy of the live file (a reflink where the
  filesystem has them). The first publish writes a new file.

Rows of a date are inserted in (as_of_date, segment_code) order so DuckDB's per-row-group
min/max (zone maps) let a query on one date skip the others. No ART index: DuckDB rewrites
an index at every checkpoint, which would make each publish grow with the history.

Storage version: files are written with ``STORAGE_VERSION`` :data:`SERVING_STORAGE_VERSION`
so that DuckDB 1.x readers can open them (the default format of DuckDB 2.0 cannot be read
by 1.x, and BI connectors such as Superset's still ship duckdb 1.5). ``v1.0.0`` is the
oldest format DuckDB 2.0 writes; DuckDB 1.1.3 and 1.5.6 were checked to read it, views
included, and it measured the same size as the newer formats for these tables.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.publish.files import clone_file, fsync_dir, fsync_file
from orchestration.publish.pii import PII_COLUMNS, customer_key_sql

SERVING_STORAGE_VERSION = "v1.0.0"
ALIAS = "srv"  # the serving file being written, attached to the warehouse connection
LIVE_ALIAS = "srv_live"  # the live file, attached read-only (never read-write)
META_SCHEMA = "cartera_meta"
LOG = f"{META_SCHEMA}.publish_log"  # one row per published date and generation

# BI tables built from the marts: (source, sort order inside a date). run_audit comes from
# the warehouse's audit.run_audit (see audit.py).
MART_SOURCES: dict[str, tuple[str, str]] = {
    "segment_assignments": ("marts.segment_assignments", "segment_code, loan_id"),
    "segment_summary": ("marts.segment_summary", "segment_code, strategy_code"),
    "segment_migration": ("marts.segment_migration", "from_segment, to_segment"),
    "bucket_roll_rates": ("marts.bucket_roll_rates", "from_bucket, to_bucket"),
}
# Marts published when the warehouse has them, skipped (not an error) when it does not: a
# warehouse built before the mart existed; the report then computes its roll rates itself.
OPTIONAL_MARTS = frozenset({"bucket_roll_rates"})
BI_TABLES: tuple[str, ...] = (*MART_SOURCES, "run_audit")
RUN_AUDIT_ORDER = "started_at, run_id"

# Convenience views for BI users: the most recent published date of a table.
VIEWS = {"latest_segment_assignments": "segment_assignments", "latest_segment_summary": "segment_summary"}


# Test hooks (docs/publish.md): inert unless set; they mark the point after every new file
# is written and before anything live is replaced.
PAUSE_ENV = "CARTERA_TEST_PAUSE_BEFORE_SWAP"  # path: touch it, then sleep (to be SIGKILLed)
FAIL_ENV = "CARTERA_TEST_FAIL_BEFORE_SWAP"  # "1": raise here


class PublishError(RuntimeError):
    """A problem a person must fix before the date can be published (one-line message)."""


def fault_point_before_swap() -> None:
    marker = os.environ.get(PAUSE_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(0.05)
    if os.environ.get(FAIL_ENV) == "1":
        raise RuntimeError(f"injected failure before the serving swap ({FAIL_ENV}=1)")


def table_exists(con, schema: str, table: str, catalog: str | None = None) -> bool:
    sql = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?"
    params: list = [schema, table]
    if catalog:
        sql += " AND database_name = ?"
        params.append(catalog)
    return con.execute(sql, params).fetchone()[0] > 0


def table_columns(con, catalog: str, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [catalog, schema, table],
    ).fetchall()


def warehouse_catalog(con) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def bi_select(con, table: str) -> str:
    """SELECT list that turns a mart into its BI table: customer_id becomes customer_key.

    Built from the mart's own columns, so a column the dbt models add is published too;
    a personal-data column (name, phone, ...) stops the publish instead.
    """
    source, _ = MART_SOURCES[table]
    schema, name = source.split(".")
    cols = table_columns(con, warehouse_catalog(con), schema, name)
    if not cols:
        raise PublishError(f"{source} does not exist in the warehouse: run the dbt models first")
    leaked = sorted({c for c, _ in cols} & (PII_COLUMNS - {"customer_id"}))
    if leaked:
        raise PublishError(
            f"{source} has personal-data column(s) {', '.join(leaked)}: BI tables must not carry "
            "them; drop them from the mart (they belong in restricted.daily_actions)"
        )
    parts = []
    for col, _ in cols:
        if col == "customer_id":
            parts.append(f"{customer_key_sql('s.customer_id')} AS customer_key")
        else:
            parts.append(f's."{col}"')
    return ", ".join(parts)


@dataclass
class StagedServing:
    """The next serving state, attached as :data:`ALIAS`, not yet visible to readers.

    ``target`` is the file being written: the standby (updated in place), or a new copy.
    """

    con: object
    live: Path
    target: Path
    mode: str  # new | standby | copy | reflink | rebuilt
    storage_version: str
    generation: int = 0  # the target's latest generation before this publish
    live_generation: int = 0  # the live file's latest generation (this publish writes +1)
    replayed: list[str] = field(default_factory=list)
    fallback_reason: str = ""
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> date -> rows
    seconds: dict[str, float] = field(default_factory=dict)
    attached: bool = True

    @property
    def method(self) -> str:
        if self.mode == "standby":
            return f"standby updated in place (replayed {len(self.replayed)} date(s))"
        return self.mode + (f" ({self.fallback_reason})" if self.fallback_reason else "")

    def write_run_audit(self, source_sql: str) -> None:
        """Rewrite run_audit whole from ``source_sql`` (the warehouse record plus this run's
        rows): it holds one row per run and date, small enough to copy every time."""
        con = self.con
        _ensure_table(con, "run_audit", f"SELECT * FROM ({source_sql}) LIMIT 0", {})
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {ALIAS}.main.run_audit")
        con.execute(
            f"INSERT INTO {ALIAS}.main.run_audit BY NAME "
            f"SELECT * FROM ({source_sql}) ORDER BY as_of_date, {RUN_AUDIT_ORDER}"
        )
        con.execute("COMMIT")

    def detach(self) -> None:
        if self.attached:
            self.con.execute(f"CHECKPOINT {ALIAS}")
            self.con.execute(f"DETACH {ALIAS}")
            self.attached = False
            wal = _wal(self.target)
            if wal.exists():  # everything must be in the main file before it is swapped in
                raise PublishError(f"{wal} still exists after checkpoint; not swapping")
            fsync_file(self.target)

    def commit(self) -> None:
        """Swap the new state in: a reader that opens the file from now on sees it.

        The previous live file is kept (hard link) as the next publish's standby.
        """
        self.detach()
        live, standby = self.live, standby_path(self.live)
        if live.exists():
            keep = _temp_name(live, "keep")
            os.link(live, keep)
            os.replace(self.target, live)
            os.replace(keep, standby)
        else:
            os.replace(self.target, live)
        fsync_dir(live.parent)

    def discard(self) -> None:
        for alias in (ALIAS, LIVE_ALIAS, "srv_old"):
            try:
                self.con.execute(f"DETACH DATABASE IF EXISTS {alias}")
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
        self.attached = False
        if self.mode != "standby":  # a rolled-back or half-updated standby is detected later
            for path in (self.target, _wal(self.target)):
                path.unlink(missing_ok=True)


def standby_path(live: Path) -> Path:
    return live.with_name(live.name + ".standby")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _temp_name(live: Path, kind: str) -> Path:
    return live.with_name(f"{live.name}.tmp-{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _attach(con, path: Path) -> str:
    con.execute(f"ATTACH '{path}' AS {ALIAS} (STORAGE_VERSION '{SERVING_STORAGE_VERSION}')")
    tags = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = ?", [ALIAS]
    ).fetchone()[0]
    return (tags or {}).get("storage_version", "unknown")


def _log_entries(con, alias: str) -> list[tuple] | None:
    """(generation, publish_id, as_of_date) rows of a serving file's publish log."""
    if not table_exists(con, META_SCHEMA, "publish_log", alias):
        return None
    return con.execute(
        f"SELECT generation, publish_id, as_of_date FROM {alias}.{LOG}"
    ).fetchall()


def _head(entries: list[tuple] | None) -> tuple[int, str] | None:
    if not entries:
        return None
    return max((g, p) for g, p, _ in entries)


def _attach_copy(con, live: Path, staged_reason: str) -> StagedServing:
    """Attach a full copy of the live file (or a new file), in the chosen format."""
    tmp = _temp_name(live, "copy")
    if not live.exists():
        return StagedServing(con, live, tmp, "new", _attach(con, tmp))
    method = clone_file(live, tmp)
    try:
        return StagedServing(con, live, tmp, method, _attach(con, tmp), fallback_reason=staged_reason)
    except Exception as exc:  # a file in a newer format than SERVING_STORAGE_VERSION
        if "cannot be lowered" not in str(exc):
            raise
    # Rebuild in the chosen format: copy every table and view of the old file.
    old = tmp.with_name(tmp.name + "-old")
    os.replace(tmp, old)
    try:
        con.execute(f"ATTACH '{old}' AS srv_old (READ_ONLY)")
        version = _attach(con, tmp)
        con.execute(f"COPY FROM DATABASE srv_old TO {ALIAS}")
        con.execute("DETACH srv_old")
    finally:
        old.unlink(missing_ok=True)
    return StagedServing(con, live, tmp, "rebuilt", version, fallback_reason="the live file was in a newer storage format")


def _open_target(con, live: Path) -> StagedServing:
    """Choose the file to write: the standby when it can be brought up to date, else a copy.

    The standby is the previous live file. It is usable when no reader holds it (DuckDB
    refuses the write lock at once, it never waits) and its latest generation appears in
    the live file's publish log (same lineage, strictly older). The live file is attached
    read-only as :data:`LIVE_ALIAS` for the replay when the standby is used.
    """
    live_log, reason = None, "no standby yet"
    if live.exists():
        try:
            con.execute(f"ATTACH '{live}' AS {LIVE_ALIAS} (READ_ONLY)")  # shares readers' lock
            live_log = _log_entries(con, LIVE_ALIAS)
        except Exception:  # noqa: BLE001 - e.g. open elsewhere in this process: copy it
            reason = "live file busy in this process"
    standby = standby_path(live)
    if live_log and standby.exists():
        try:
            version = _attach(con, standby)
        except Exception as exc:  # noqa: BLE001 - any problem: fall back to a full copy
            busy = any(w in str(exc).lower() for w in ("lock", "already attached", "in use"))
            reason = "standby held by a reader" if busy else "standby unreadable"
        else:
            head, live_head = _head(_log_entries(con, ALIAS)), _head(live_log)
            if head and head[0] < live_head[0] and head in {(g, p) for g, p, _ in live_log}:
                staged = StagedServing(con, live, standby, "standby", version, generation=head[0])
                staged.live_generation = live_head[0]
                staged.replayed = sorted(
                    {d.isoformat() for g, _, d in live_log if g > head[0] and d is not None}
                )
                return staged
            con.execute(f"DETACH {ALIAS}")
            reason = "standby not on the live file's lineage"
    con.execute(f"DETACH DATABASE IF EXISTS {LIVE_ALIAS}")  # a copy needs no live file attached
    staged = _attach_copy(con, live, reason)
    head = _head(_log_entries(con, ALIAS))  # the copy's log is the live file's log
    staged.generation = staged.live_generation = head[0] if head else 0
    return staged


def _used(sql: str, params: dict) -> dict:
    """The named parameters ``sql`` mentions (DuckDB rejects unused ones)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _ensure_table(con, table: str, probe: str, params: dict) -> None:
    """Create the BI table if missing; add columns the source gained since (nullable).

    ``probe`` is a SELECT returning no rows with the table's columns.
    """
    params = _used(probe, params)
    if not table_exists(con, "main", table, ALIAS):
        con.execute(f"CREATE TABLE {ALIAS}.main.{table} AS {probe}", params)
        return
    have = {c for c, _ in table_columns(con, ALIAS, "main", table)}
    described = con.execute(f"DESCRIBE {probe}", params).fetchall()
    for col, col_type, *_ in described:
        if col not in have:
            con.execute(f'ALTER TABLE {ALIAS}.main.{table} ADD COLUMN "{col}" {col_type}')


def _in_dates(dates) -> str:
    """``as_of_date IN (DATE '...', ...)``: literal dates let DuckDB prune row groups."""
    return "as_of_date IN (" + ", ".join(f"DATE '{d}'" for d in dates) + ")"


def stage_serving(
    con, live: Path, dates: list[dt.date], pads_params: dict, run_id: str = ""
) -> StagedServing:
    """Prepare the next serving state with ``dates`` replaced from the marts.

    ``dates`` may be empty (a failed run only refreshes run_audit). Everything (dates
    replayed into a standby, the run's dates, the publish log entry, views) is written in
    one transaction, so a standby is never left half-updated. Call
    :meth:`StagedServing.write_run_audit` next, then ``commit()`` or ``discard()``.
    """
    t0 = time.monotonic()
    staged = _open_target(con, live)
    staged.seconds["open"] = time.monotonic() - t0
    try:
        t1 = time.monotonic()
        wh = warehouse_catalog(con)
        selects = {}
        con.execute("BEGIN")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{META_SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {ALIAS}.{LOG} (generation BIGINT, publish_id VARCHAR, "
            "run_id VARCHAR, published_at TIMESTAMP, as_of_date DATE)"
        )
        for table, (source, _) in MART_SOURCES.items():
            schema, name = source.split(".")
            if table_exists(con, schema, name, wh):
                selects[table] = bi_select(con, table)
                # A LIMIT 0 probe computes nothing: placeholder pads, no key needed.
                _ensure_table(
                    con, table, f"SELECT {selects[table]} FROM {wh}.{source} s LIMIT 0",
                    {"hmac_inner": b"", "hmac_outer": b""},
                )
            if staged.mode == "standby" and table_exists(con, "main", table, LIVE_ALIAS):
                _ensure_table(con, table, f"SELECT * FROM {LIVE_ALIAS}.main.{table} LIMIT 0", {})

        run_days = {d.isoformat() for d in dates}
        replay = [d for d in staged.replayed if d not in run_days]
        for table, (source, order) in MART_SOURCES.items():
            if replay and table_exists(con, "main", table, LIVE_ALIAS):
                # Bring the standby level with the live file: copy the dates the publishes
                # since the standby's generation changed, from the live file itself.
                con.execute(f"DELETE FROM {ALIAS}.main.{table} WHERE {_in_dates(replay)}")
                con.execute(  # already sorted in the live file: scan order is kept
                    f"INSERT INTO {ALIAS}.main.{table} BY NAME SELECT * FROM {LIVE_ALIAS}.main.{table} "
                    f"WHERE {_in_dates(replay)}"
                )
            if table not in selects:
                if dates and table not in OPTIONAL_MARTS:
                    raise PublishError(f"{source} does not exist in the warehouse: run dbt first")
                continue
            staged.rows[table] = {}
            if dates:
                con.execute(f"DELETE FROM {ALIAS}.main.{table} WHERE {_in_dates(sorted(run_days))}")
            # One insert per date: bounded memory on a long backfill, and each date's rows
            # land contiguously, sorted, so zone maps prune by date and segment.
            insert = (
                f"INSERT INTO {ALIAS}.main.{table} BY NAME "
                f"SELECT {selects[table]} FROM {wh}.{source} s "
                f"WHERE s.as_of_date = $day ORDER BY {order}"
            )
            for day in dates:
                n = con.execute(insert, _used(insert, {**pads_params, "day": day})).fetchone()[0]
                staged.rows[table][day.isoformat()] = n

        if staged.mode == "standby":  # carry the live file's log entries the standby lacks
            con.execute(
                f"INSERT INTO {ALIAS}.{LOG} SELECT * FROM {LIVE_ALIAS}.{LOG} "
                f"WHERE generation > {staged.generation}"
            )
        staged.generation = staged.live_generation + 1
        publish_id = uuid.uuid4().hex
        for day in sorted(run_days) or [None]:
            con.execute(
                f"INSERT INTO {ALIAS}.{LOG} VALUES (?, ?, ?, now()::TIMESTAMP, ?)",
                [staged.generation, publish_id, run_id, day],
            )
        for view, base in VIEWS.items():
            if table_exists(con, "main", base, ALIAS):
                ref = f"{ALIAS}.main.{base}"
                con.execute(
                    f"CREATE OR REPLACE VIEW {ALIAS}.main.{view} AS SELECT * FROM {ref} "
                    f"WHERE as_of_date = (SELECT max(as_of_date) FROM {ref})"
                )
        con.execute("COMMIT")
        con.execute(f"DETACH DATABASE IF EXISTS {LIVE_ALIAS}")
        staged.seconds["write"] = time.monotonic() - t1
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - no open transaction
            pass
        staged.discard()
        raise
    return staged
