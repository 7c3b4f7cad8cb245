"""run_audit: what an auditor needs to trust (or question) a published date.

One row per run and as_of_date (contract section 4): run id, input files with sha256,
rows read / quarantined / published, rulebook version, code version, start and end time
(UTC), outcome (``published`` or ``failed: <stage>: <reason>``).

Where it lives:

- ``audit.run_audit`` in the warehouse: the append-only record (publish owns the schema).
- ``run_audit`` in serving.duckdb (and its Parquet export / PostgreSQL copy): a copy of the
  warehouse table, rewritten at every publish and by :func:`record_failed_run`, so auditors
  and ``cartera audit`` read it without ever touching the pipeline's warehouse.

Counting rules: rows_read and rows_quarantined are summed over the date's input files
(raw.ingest_files of the latest ingest of that date; for a failed run, only files that
run ingested, or else the distinct lines it quarantined); rows_published is the number of segment_assignments rows (loans)
published for the date (0 for a failed run).

Times (UTC): started_at is the Dagster run's start (the caller's value for a failed run,
else empty); ended_at is when the run's results were final, just before they were
written out to the targets (for a failed run: when the failure was recorded).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from functools import lru_cache

from orchestration.calendar import PROJECT_ROOT
from orchestration.config import CarteraResource, ConfigError

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.run_audit (
    run_id           VARCHAR NOT NULL,
    as_of_date       DATE,
    input_files      VARCHAR,   -- JSON list of {file_name, sha256, rows_read, rows_quarantined, rows_landed}
    rows_read        BIGINT,
    rows_quarantined BIGINT,
    rows_published   BIGINT,
    rulebook_version VARCHAR,
    code_version     VARCHAR,
    started_at       TIMESTAMP, -- UTC
    ended_at         TIMESTAMP, -- UTC
    outcome          VARCHAR NOT NULL
);
"""
NEW_ROWS = "new_run_audit"  # temp table holding this run's rows until they are committed
MAX_REASON = 500


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<git short commit>`` when run from a git checkout, else the version.

    Cached per process: a long-running process (Dagster daemon) runs the code it loaded,
    not whatever was checked out since.
    """
    from orchestration import __version__

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=False,
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


def ensure_audit_table(con) -> None:
    con.execute(AUDIT_DDL)


def _exists(con, schema: str, table: str) -> bool:
    return con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchone()[0] > 0


def stage_run_rows(
    con,
    run_id: str,
    dates: list[dt.date],
    outcome: str,
    started_at: dt.datetime | None,
    ended_at: dt.datetime,
    published: bool,
    only_this_run_inputs: bool = False,
) -> None:
    """Compute this run's audit rows into the temp table :data:`NEW_ROWS` (not yet committed).

    ``only_this_run_inputs``: for a failed run, list only files this run ingested (the
    date's earlier ingest says nothing about this run).
    """
    have_files = _exists(con, "raw", "ingest_files")
    have_marts = published and _exists(con, "marts", "segment_assignments")
    if have_files:
        run_filter = "AND f.run_id = $run_id" if only_this_run_inputs else (
            "AND f.run_id = (SELECT arg_max(g.run_id, g.ingested_at) FROM raw.ingest_files g "
            "WHERE g.as_of_date = f.as_of_date)"
        )
        files_cte = f"""
            SELECT f.as_of_date,
                   to_json(list({{'file_name': f.file_name, 'sha256': f.sha256,
                                  'rows_read': f.rows_read, 'rows_quarantined': f.rows_quarantined,
                                  'rows_landed': f.rows_landed}} ORDER BY f.file_name))::VARCHAR
                       AS input_files,
                   sum(f.rows_read)::BIGINT AS rows_read,
                   sum(f.rows_quarantined)::BIGINT AS rows_quarantined
            FROM raw.ingest_files f
            WHERE f.as_of_date IN (SELECT d FROM days) {run_filter}
            GROUP BY f.as_of_date"""
    else:
        files_cte = (
            "SELECT NULL::DATE AS as_of_date, NULL::VARCHAR AS input_files, "
            "NULL::BIGINT AS rows_read, NULL::BIGINT AS rows_quarantined WHERE false"
        )
    # A failed run that landed nothing (e.g. too many bad rows) still quarantined rows:
    # one raw.quarantine row per (line, rule), so lines are counted once.
    if only_this_run_inputs and _exists(con, "raw", "quarantine"):
        quarantine_cte = """
            SELECT as_of_date, count(DISTINCT (file_name, line_number))::BIGINT AS n
            FROM raw.quarantine WHERE run_id = $run_id GROUP BY as_of_date"""
    else:
        quarantine_cte = "SELECT NULL::DATE AS as_of_date, NULL::BIGINT AS n WHERE false"
    if have_marts:
        pub_cte = """
            SELECT as_of_date, count(*)::BIGINT AS rows_published,
                   string_agg(DISTINCT rulebook_version, ',') AS rulebook_version
            FROM marts.segment_assignments
            WHERE as_of_date IN (SELECT d FROM days)
            GROUP BY as_of_date"""
    else:
        pub_cte = (
            "SELECT NULL::DATE AS as_of_date, 0::BIGINT AS rows_published, "
            "NULL::VARCHAR AS rulebook_version WHERE false"
        )
    sql = f"""
        CREATE OR REPLACE TEMP TABLE {NEW_ROWS} AS
        WITH days AS (SELECT unnest(CAST($dates AS DATE[])) AS d),
             files AS ({files_cte}),
             pub AS ({pub_cte}),
             quarantined AS ({quarantine_cte})
        SELECT $run_id::VARCHAR AS run_id,
               days.d AS as_of_date,
               coalesce(files.input_files, '[]') AS input_files,
               files.rows_read,
               coalesce(files.rows_quarantined, quarantined.n) AS rows_quarantined,
               coalesce(pub.rows_published, 0)::BIGINT AS rows_published,
               pub.rulebook_version,
               $code_version::VARCHAR AS code_version,
               $started_at::TIMESTAMP AS started_at,
               $ended_at::TIMESTAMP AS ended_at,
               $outcome::VARCHAR AS outcome
        FROM days
        LEFT JOIN files ON files.as_of_date = days.d
        LEFT JOIN pub ON pub.as_of_date = days.d
        LEFT JOIN quarantined ON quarantined.as_of_date = days.d
        ORDER BY days.d"""
    params = {
        "dates": [d.isoformat() for d in dates],
        "code_version": code_version(),
        "started_at": started_at,
        "ended_at": ended_at,
        "outcome": outcome,
    }
    if "$run_id" in sql:
        params["run_id"] = run_id
    con.execute(sql, params)


# What serving's run_audit must hold after this run: the warehouse record plus this run.
SERVING_AUDIT_SQL = f"SELECT * FROM audit.run_audit UNION ALL SELECT * FROM temp.main.{NEW_ROWS}"


def commit_run_rows(con) -> None:
    con.execute(f"INSERT INTO audit.run_audit SELECT * FROM temp.main.{NEW_ROWS}")
    con.execute(f"DROP TABLE temp.main.{NEW_ROWS}")


def _one_line(text: str, secret: bytes | None) -> str:
    line = " ".join(str(text).split())
    if secret:
        line = line.replace(secret.decode("utf-8", "replace"), "<redacted>")
    return line[:MAX_REASON]


def record_failed_run(
    cartera: CarteraResource,
    run_id: str,
    as_of_date: str | dt.date,
    stage: str,
    reason: str,
    started_at: dt.datetime | None = None,
) -> None:
    """Write a ``failed: <stage>: <reason>`` audit row for a run that did not publish.

    Called by the job's failure hook. The row goes to the warehouse's audit.run_audit and,
    through the same copy-and-swap as a publish, to serving.duckdb's run_audit (and that
    date's run_audit Parquet file), so ``cartera audit`` shows it; the published BI tables
    are left exactly as they were. ``reason`` should name files/lines/columns, not row
    values; it is flattened to one line and the PII key is masked if it ever appears.
    Raises if the warehouse cannot be written; the serving copy is then left as it was.
    """
    from orchestration.publish.files import Staging, remove_leftovers
    from orchestration.publish.parquet import stage_parquet
    from orchestration.publish.serving import stage_serving

    try:
        secret = cartera.pii_key()
    except ConfigError:
        secret = None
    day = dt.date.fromisoformat(str(as_of_date)) if not isinstance(as_of_date, dt.date) else as_of_date
    outcome = f"failed: {stage}: {_one_line(reason, secret)}"
    con = cartera.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        ensure_audit_table(con)
        stage_run_rows(
            con, run_id, [day], outcome, started_at, utcnow(),
            published=False, only_this_run_inputs=True,
        )
        commit_run_rows(con)
        remove_leftovers(cartera.warehouse_path, cartera.serving_db)
        staged = stage_serving(con, cartera.serving_db, [], {}, run_id)
        staging = Staging(cartera.warehouse_path)
        try:
            staged.write_run_audit("SELECT * FROM audit.run_audit")
            stage_parquet(con, staging, cartera.warehouse_path / "parquet", [day], ["run_audit"])
            staging.commit()
            staged.commit()
        except BaseException:
            staging.discard()
            staged.discard()
            raise
    finally:
        con.close()


class AuditNotFound(LookupError):
    """No run_audit row for the date (or nothing published yet)."""


def _fmt_ts(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def format_audit(cartera: CarteraResource, as_of_date: str | dt.date) -> str:
    """Text for ``cartera audit --date D``: every run that touched D, oldest first.

    Reads serving.duckdb read-only (never the pipeline's warehouse, so it works while a
    run is going on). Raises :class:`AuditNotFound` with a one-line message if there is
    nothing to show.
    """
    import duckdb

    day = dt.date.fromisoformat(str(as_of_date))
    path = cartera.serving_db
    if not path.exists():
        raise AuditNotFound(f"{path} does not exist: nothing has been published yet")
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(
            "SELECT * FROM run_audit WHERE as_of_date = ? ORDER BY started_at NULLS LAST, ended_at, run_id",
            [day],
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()
    if not rows:
        raise AuditNotFound(f"{path}: no run_audit row for {day} (that date was never run)")

    out = [f"run_audit for {day} ({len(rows)} run{'s' if len(rows) > 1 else ''}; source {path})"]
    for r in rows:
        took = ""
        if r["started_at"] and r["ended_at"]:
            took = f" ({(r['ended_at'] - r['started_at']).total_seconds():.1f} s)"
        out += [
            "",
            f"run {r['run_id']}",
            f"  outcome           {r['outcome']}",
            f"  started / ended   {_fmt_ts(r['started_at'])} / {_fmt_ts(r['ended_at'])}{took}",
            f"  rows read         {_n(r['rows_read'])}",
            f"  rows quarantined  {_n(r['rows_quarantined'])}",
            f"  rows published    {_n(r['rows_published'])}",
            f"  rulebook version  {r['rulebook_version'] or '-'}",
            f"  code version      {r['code_version'] or '-'}",
        ]
        files = json.loads(r["input_files"] or "[]")
        if files:
            out.append("  input files")
            width = max(len(f["file_name"]) for f in files)
            for f in files:
                out.append(
                    f"    {f['file_name']:<{width}}  sha256 {f['sha256']}  read {_n(f.get('rows_read'))}"
                    f"  quarantined {_n(f.get('rows_quarantined'))}  landed {_n(f.get('rows_landed'))}"
                )
        else:
            out.append("  input files       -")
    return "\n".join(out)


def _n(value) -> str:
    return "-" if value is None else f"{value:,}"
