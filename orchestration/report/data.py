"""Every figure of the daily report, aggregated in SQL over the published tables.

The report reads the serving file only (opened read-only, so BI readers and the report never
block each other) plus, for the data-quality section, the warehouse's ``raw.quarantine``
(also read-only, closed at once). Nothing row-level leaves DuckDB: each query returns at
most a few hundred rows, which is what keeps a 1,000,000-loan report fast and small.

Definitions used here (also printed in the report):

- PAR 30 / PAR 90: share of the balance (``balance_pen``) of loans with ``dpd`` > 30 / > 90.
- Previous date: the latest published ``as_of_date`` before the report's date.
- Roll rates: consecutive published dates in the window are joined by ``loan_id``. For the
  loans with ``dpd`` > 0 on the earlier date, their balance *on that date* is classified by
  what happened on the later date: ``curo`` (dpd = 0), ``se_mantuvo`` (same ``dpd_bucket``),
  ``empeoro`` (a later bucket: higher dpd), ``mejoro`` (an earlier bucket, still past due),
  ``salio`` (absent: paid off, sold or written off the books). Buckets are contiguous dpd
  ranges, so "later bucket" is simply "different bucket and higher dpd": the buckets stay
  configuration of the dbt project (seed ``dpd_buckets``).

The roll rates come from the published mart ``bucket_roll_rates`` (dbt model
``models/marts/bucket_roll_rates.sql``): per date, loans and balance from each bucket on the
previous date to each bucket today, computed once when the date was transformed. The report
reads its ~30 dates x a few dozen rows instead of joining 30 dates of loans; a date without
rows there (published before the mart existed) is joined here from ``segment_assignments``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The names of the indicators fix these thresholds (PAR 30 = "portfolio at risk > 30 days").
PAR_DAYS = (30, 90)
# How many published dates the roll-rate chart looks back over (report setting).
ROLL_WINDOW_DATES = 30

# Regulatory order of risk [SBS Res. 11356-2008].
SBS_ORDER = ("NOR", "CPP", "DEF", "DUD", "PER")
NEW_SEGMENT, GONE_SEGMENT = "NUEVO", "SALIDA"


class ReportDataError(RuntimeError):
    """The serving file lacks what the report needs (message names file and table)."""


@dataclass
class Kpis:
    as_of_date: dt.date
    loans: int
    customers: int
    balance_pen: Decimal
    par30_balance_pen: Decimal
    par90_balance_pen: Decimal
    provision_pen: Decimal

    @property
    def par30(self) -> float:
        return float(self.par30_balance_pen / self.balance_pen) if self.balance_pen else 0.0

    @property
    def par90(self) -> float:
        return float(self.par90_balance_pen / self.balance_pen) if self.balance_pen else 0.0


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""
    source: str = "reporte"


@dataclass
class ReportData:
    as_of_date: dt.date
    previous_date: dt.date | None
    kpis: Kpis
    previous_kpis: Kpis | None
    segments: list[dict[str, Any]]
    migration: list[dict[str, Any]]
    segment_order: list[str]
    roll_window: list[dt.date]
    roll_rates: list[dict[str, Any]]
    roll_entries: list[dict[str, Any]]
    bucket_order: list[str]
    roll_matrix: list[dict[str, Any]]
    sbs: list[dict[str, Any]]
    departments: list[dict[str, Any]]
    credit_types: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    audit: dict[str, Any] | None
    input_files: list[dict[str, Any]]
    quarantine: list[dict[str, Any]] | None  # None: the warehouse could not be read
    quarantine_note: str = ""
    checks: list[Check] = field(default_factory=list)
    roll_pairs_joined: int = 0  # pairs without bucket_roll_rates rows, joined at render time


def _rows(con, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def connect_serving(serving_db: Path):
    import duckdb

    serving_db = Path(serving_db)
    if not serving_db.exists():
        raise ReportDataError(
            f"{serving_db}: serving file not found; the report is written after publish "
            "(run `cartera run` for the date first)"
        )
    return duckdb.connect(str(serving_db), read_only=True)


def published_dates(serving_db: Path, start: str | None = None, end: str | None = None) -> list[dt.date]:
    """Dates present in the serving file's ``segment_summary`` (tiny table), ascending."""
    con = connect_serving(serving_db)
    try:
        rows = con.execute(
            "SELECT DISTINCT as_of_date FROM segment_summary "
            "WHERE as_of_date BETWEEN coalesce(?::DATE, DATE '0001-01-01') "
            "AND coalesce(?::DATE, DATE '9999-12-31') ORDER BY 1",
            [start, end],
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


_KPI_SQL = f"""
SELECT as_of_date,
       count(*) AS loans,
       count(DISTINCT customer_key) AS customers,
       coalesce(sum(balance_pen), 0) AS balance_pen,
       coalesce(sum(balance_pen) FILTER (WHERE dpd > {PAR_DAYS[0]}), 0) AS par30_balance_pen,
       coalesce(sum(balance_pen) FILTER (WHERE dpd > {PAR_DAYS[1]}), 0) AS par90_balance_pen,
       coalesce(sum(provision_pen), 0) AS provision_pen
FROM segment_assignments
WHERE as_of_date IN (?, ?)
GROUP BY as_of_date
"""

_SEGMENTS_SQL = """
WITH s AS (
    SELECT segment_code, strategy_code, loans, customers, balance_pen, provision_pen, balance_share
    FROM segment_summary WHERE as_of_date = ?
), detail AS (
    SELECT segment_code,
           mode(channel) AS main_channel,
           mode(offer) AS main_offer,
           mode(assignee) AS main_assignee,
           avg(dpd) AS avg_dpd
    FROM segment_assignments WHERE as_of_date = ?
    GROUP BY segment_code
), prev AS (
    SELECT segment_code, loans AS prev_loans, balance_pen AS prev_balance_pen
    FROM segment_summary WHERE as_of_date = ?
)
SELECT s.*, detail.main_channel, detail.main_offer, detail.main_assignee, detail.avg_dpd,
       prev.prev_loans, prev.prev_balance_pen
FROM s LEFT JOIN detail USING (segment_code) LEFT JOIN prev USING (segment_code)
ORDER BY s.balance_pen DESC, s.segment_code
"""

# One pair of consecutive published dates (earlier ?, later ?), joined by loan_id. Loans
# past due on the earlier date get a roll outcome; loans current on it count towards the
# flow into delinquency ('entro') or not ('al_dia', including those that left).
_ROLL_PAIR_SQL = """
WITH before AS (
    SELECT loan_id, dpd, dpd_bucket, balance_pen FROM segment_assignments WHERE as_of_date = ?
), after AS (
    SELECT loan_id, dpd, dpd_bucket FROM segment_assignments WHERE as_of_date = ?
)
SELECT CASE WHEN b.dpd = 0 THEN (CASE WHEN a.dpd > 0 THEN 'entro' ELSE 'al_dia' END)
            WHEN a.loan_id IS NULL THEN 'salio'
            WHEN a.dpd = 0 THEN 'curo'
            WHEN a.dpd_bucket = b.dpd_bucket THEN 'se_mantuvo'
            WHEN a.dpd > b.dpd THEN 'empeoro'
            ELSE 'mejoro' END AS outcome,
       count(*) AS loans,
       sum(b.balance_pen) AS balance_pen
FROM before b LEFT JOIN after a USING (loan_id)
GROUP BY 1
"""

_MATRIX_SQL = """
WITH cur AS (SELECT loan_id, dpd, dpd_bucket, balance_pen FROM segment_assignments WHERE as_of_date = ?),
prev AS (SELECT loan_id, dpd, dpd_bucket, balance_pen FROM segment_assignments WHERE as_of_date = ?)
SELECT coalesce(prev.dpd_bucket, 'NUEVO') AS from_bucket,
       coalesce(cur.dpd_bucket, 'SALIDA') AS to_bucket,
       count(*) AS loans,
       sum(coalesce(prev.balance_pen, cur.balance_pen)) AS balance_pen
FROM prev FULL JOIN cur USING (loan_id)
GROUP BY ALL ORDER BY ALL
"""

# Bucket order = order of the smallest dpd seen in each bucket (buckets are dpd ranges).
_BUCKETS_SQL = """
SELECT dpd_bucket FROM segment_assignments WHERE as_of_date IN (?, ?)
GROUP BY dpd_bucket ORDER BY min(dpd), dpd_bucket
"""

_SBS_SQL = """
WITH own AS (
    SELECT sbs_category AS category, count(*) AS loans_own, sum(balance_pen) AS balance_own
    FROM segment_assignments WHERE as_of_date = ? GROUP BY 1
), aligned AS (
    SELECT sbs_category_aligned AS category, count(*) AS loans_aligned,
           sum(balance_pen) AS balance_aligned, sum(provision_pen) AS provision_pen
    FROM segment_assignments WHERE as_of_date = ? GROUP BY 1
)
SELECT category,
       coalesce(loans_own, 0) AS loans_own, coalesce(balance_own, 0) AS balance_own,
       coalesce(loans_aligned, 0) AS loans_aligned, coalesce(balance_aligned, 0) AS balance_aligned,
       coalesce(provision_pen, 0) AS provision_pen
FROM own FULL JOIN aligned USING (category)
"""

_BREAKDOWN_SQL = f"""
SELECT {{col}} AS key,
       count(*) AS loans,
       sum(balance_pen) AS balance_pen,
       coalesce(sum(balance_pen) FILTER (WHERE dpd > {PAR_DAYS[0]}), 0) AS par30_balance_pen,
       coalesce(sum(balance_pen) FILTER (WHERE dpd > {PAR_DAYS[1]}), 0) AS par90_balance_pen,
       sum(provision_pen) AS provision_pen
FROM segment_assignments WHERE as_of_date = ?
GROUP BY 1 ORDER BY balance_pen DESC, key
"""

# The next working day's contacts by channel and strategy. A loan has an action exactly when
# it has a next_contact_date (null for the no-action strategy, contract section 3), so no
# strategy code is named here. Same loans as the restricted worklist, without its PII.
_ACTIONS_SQL = """
SELECT channel, strategy_code, min(next_contact_date) AS next_contact_date,
       count(*) AS loans, sum(balance_pen) AS balance_pen
FROM segment_assignments
WHERE as_of_date = ? AND next_contact_date IS NOT NULL
GROUP BY ALL ORDER BY loans DESC, channel, strategy_code
"""


def _kpis(row: dict[str, Any]) -> Kpis:
    return Kpis(**{k: row[k] for k in Kpis.__dataclass_fields__})


def load_report_data(
    serving_db: Path,
    as_of_date: dt.date | str,
    *,
    warehouse_db: Path | None = None,
    roll_window_dates: int = ROLL_WINDOW_DATES,
    quarantine_threshold: float | None = None,
) -> ReportData:
    """Query everything the report of ``as_of_date`` shows (one read-only connection)."""
    day = dt.date.fromisoformat(as_of_date) if isinstance(as_of_date, str) else as_of_date
    con = connect_serving(serving_db)
    try:
        window = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT as_of_date FROM segment_summary WHERE as_of_date <= ? "
                "ORDER BY 1 DESC LIMIT ?",
                [day, roll_window_dates],
            ).fetchall()
        ][::-1]
        if not window or window[-1] != day:
            raise ReportDataError(
                f"{serving_db}: table segment_summary has no rows for as_of_date {day}; "
                "only published dates get a report"
            )
        previous = window[-2] if len(window) > 1 else None

        kpi_rows = {r["as_of_date"]: r for r in _rows(con, _KPI_SQL, [day, previous or day])}
        kpis = _kpis(kpi_rows[day])
        previous_kpis = _kpis(kpi_rows[previous]) if previous in kpi_rows else None

        segments = _rows(con, _SEGMENTS_SQL, [day, day, previous])
        migration = (
            _rows(
                con,
                "SELECT from_segment, to_segment, loans, balance_pen FROM segment_migration "
                "WHERE as_of_date = ? ORDER BY ALL",
                [day],
            )
            if previous
            else []
        )

        flows = bucket_flows(con, window)
        roll_rates, roll_entries, roll_pairs_joined = roll_pairs(con, window, flows)
        if day in flows:  # the last pair's matrix from the mart (or today's buckets on a first date)
            roll_matrix, buckets = transition_matrix(flows[day])
            roll_matrix = roll_matrix if previous else []
        else:
            buckets = [r[0] for r in con.execute(_BUCKETS_SQL, [day, previous or day]).fetchall()]
            roll_matrix = _rows(con, _MATRIX_SQL, [day, previous]) if previous else []

        sbs = _rows(con, _SBS_SQL, [day, day])
        sbs.sort(key=lambda r: (SBS_ORDER.index(r["category"]) if r["category"] in SBS_ORDER else 99, str(r["category"])))

        departments = _rows(con, _BREAKDOWN_SQL.format(col="department_code"), [day])
        credit_types = _rows(con, _BREAKDOWN_SQL.format(col="credit_type"), [day])
        actions = _rows(con, _ACTIONS_SQL, [day])

        audit_rows = _rows(
            con,
            "SELECT * FROM run_audit WHERE as_of_date = ? "
            "ORDER BY (outcome = 'published') DESC, ended_at DESC NULLS LAST LIMIT 1",
            [day],
        )
    finally:
        con.close()

    audit = audit_rows[0] if audit_rows else None
    input_files = _input_files(audit)

    # segments ordered from healthy to worst (mean dpd) for the migration heatmap axes
    order = sorted(segments, key=lambda r: (float(r["avg_dpd"] or 0), r["segment_code"]))
    segment_order = [r["segment_code"] for r in order]
    for r in migration:
        for key in ("from_segment", "to_segment"):
            if r[key] not in segment_order and r[key] not in (NEW_SEGMENT, GONE_SEGMENT):
                segment_order.append(r[key])

    quarantine, note = _quarantine(warehouse_db, day)
    data = ReportData(
        as_of_date=day,
        previous_date=previous,
        kpis=kpis,
        previous_kpis=previous_kpis,
        segments=segments,
        migration=migration,
        segment_order=segment_order,
        roll_window=window,
        roll_rates=roll_rates,
        roll_entries=roll_entries,
        bucket_order=buckets,
        roll_matrix=roll_matrix,
        roll_pairs_joined=roll_pairs_joined,
        sbs=sbs,
        departments=departments,
        credit_types=credit_types,
        actions=actions,
        audit=audit,
        input_files=input_files,
        quarantine=quarantine,
        quarantine_note=note,
    )
    data.checks = derived_checks(data, quarantine_threshold)
    return data


# The published roll-rate mart (dbt model models/marts/bucket_roll_rates.sql): per date, loans
# and balance from each dpd bucket on the previous processed date to each bucket today.
ROLL_TABLE = "bucket_roll_rates"
NEW_BUCKET, GONE_BUCKET = "NUEVO", "SALIDA"

_FLOWS_SQL = f"""
SELECT as_of_date, previous_date, from_bucket, to_bucket, from_bucket_min_dpd, to_bucket_min_dpd,
       loans, previous_balance_pen, balance_pen
FROM {ROLL_TABLE} WHERE as_of_date BETWEEN ? AND ?
ORDER BY as_of_date, from_bucket, to_bucket
"""


def bucket_flows(con, window: list[dt.date]) -> dict[dt.date, list[dict[str, Any]]]:
    """Rows of ``bucket_roll_rates`` per date of ``window`` that the report can use as they are.

    A date's rows are used only when they pair it with the window's previous published date
    and every bucket in them has its bounds (a bucket missing from the seed cannot be ordered).
    Dates left out (a warehouse published before the mart existed, or no table at all) are
    joined from ``segment_assignments`` by the callers: slower, same figures.
    """
    if not window:
        return {}
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [ROLL_TABLE]
    ).fetchone()[0]
    if not exists:
        return {}
    rows: dict[dt.date, list[dict[str, Any]]] = {}
    for r in _rows(con, _FLOWS_SQL, [window[0], window[-1]]):
        rows.setdefault(r["as_of_date"], []).append(r)
    previous = dict(zip(window, [None, *window[:-1]]))
    usable = {}
    for day, flows in rows.items():
        if day not in previous:
            continue
        complete = all(
            (r["from_bucket"] == NEW_BUCKET or r["from_bucket_min_dpd"] is not None)
            and (r["to_bucket"] == GONE_BUCKET or r["to_bucket_min_dpd"] is not None)
            for r in flows
        )
        if complete and all(r["previous_date"] == previous[day] for r in flows):
            usable[day] = flows
    return usable


def flow_outcome(row: dict[str, Any]) -> str | None:
    """The roll outcome of one bucket flow (module docstring); None for new loans.

    Current = the bucket starting at dpd 0 (the contract's bucket ``0`` holds exactly dpd 0);
    a later bucket is a worse one: buckets are contiguous dpd ranges ordered by their start.
    """
    if row["from_bucket"] == NEW_BUCKET:
        return None
    gone = row["to_bucket"] == GONE_BUCKET
    if row["from_bucket_min_dpd"] == 0:
        return "al_dia" if gone or row["to_bucket_min_dpd"] == 0 else "entro"
    if gone:
        return "salio"
    if row["to_bucket_min_dpd"] == 0:
        return "curo"
    if row["to_bucket"] == row["from_bucket"]:
        return "se_mantuvo"
    return "empeoro" if row["to_bucket_min_dpd"] > row["from_bucket_min_dpd"] else "mejoro"


def roll_pairs(con, window: list[dt.date], flows: dict[dt.date, list[dict[str, Any]]]):
    """Roll-rate rows for every consecutive pair of ``window``, and how many pairs were joined.

    Each pair comes from its date's ``bucket_roll_rates`` rows (``flows``), computed once when
    the date was transformed: the report's cost follows the day, not the history, even the
    first time. A pair without usable rows is joined here from ``segment_assignments``.
    """
    rates: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    joined = 0
    for prev, cur in zip(window[:-1], window[1:]):
        by: dict[str, dict[str, Any]] = {}
        if cur in flows:
            for r in flows[cur]:
                outcome = flow_outcome(r)
                if outcome is not None:
                    acc = by.setdefault(outcome, {"loans": 0, "balance_pen": Decimal(0)})
                    acc["loans"] += int(r["loans"])
                    acc["balance_pen"] += r["previous_balance_pen"]
        else:
            # one join of two dates (zone maps let DuckDB skip the other dates' row groups)
            by = {r["outcome"]: r for r in _rows(con, _ROLL_PAIR_SQL, [prev, cur])}
            joined += 1
        rates += [{"as_of_date": cur, "outcome": o, "loans": int(r["loans"]), "balance_pen": r["balance_pen"]}
                  for o, r in sorted(by.items()) if o not in ("entro", "al_dia")]
        zero = {"balance_pen": Decimal(0)}
        current = by.get("al_dia", zero)["balance_pen"] + by.get("entro", zero)["balance_pen"]
        if current:
            entries.append({"as_of_date": cur, "current_balance_pen": current,
                            "entered_balance_pen": by.get("entro", zero)["balance_pen"]})
    return rates, entries, joined


def transition_matrix(flows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The last pair's bucket x bucket matrix and the bucket order, from its flow rows.

    Balance = on the earlier date, except for new loans (today's): the same as the join's
    ``coalesce(previous balance, current balance)``.
    """
    matrix = [
        {"from_bucket": r["from_bucket"], "to_bucket": r["to_bucket"], "loans": int(r["loans"]),
         "balance_pen": r["balance_pen"] if r["from_bucket"] == NEW_BUCKET else r["previous_balance_pen"]}
        for r in sorted(flows, key=lambda r: (r["from_bucket"], r["to_bucket"]))
    ]
    return matrix, bucket_order(flows)


def bucket_order(flows: list[dict[str, Any]]) -> list[str]:
    """Buckets present in ``flows``, ordered by their lowest dpd."""
    bounds = {}
    for r in flows:
        if r["from_bucket"] != NEW_BUCKET:
            bounds[r["from_bucket"]] = r["from_bucket_min_dpd"]
        if r["to_bucket"] != GONE_BUCKET:
            bounds[r["to_bucket"]] = r["to_bucket_min_dpd"]
    return sorted(bounds, key=lambda b: (bounds[b], b))


def _input_files(audit: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not audit or not audit.get("input_files"):
        return []
    raw = audit["input_files"]
    files = json.loads(raw) if isinstance(raw, str) else raw
    return [dict(f) for f in files or []]


def _quarantine(warehouse_db: Path | None, day: dt.date) -> tuple[list[dict[str, Any]] | None, str]:
    """Quarantined rows of the day by file and rule, from the pipeline warehouse.

    Read-only and closed at once: the warehouse belongs to the pipeline. When it cannot be
    opened (absent, or held by a writer in another process) the report says so instead of
    failing: the published figures do not depend on it.
    """
    if warehouse_db is None:
        return None, "sin acceso al almacén del pipeline (reporte generado solo desde el archivo de servicio)"
    warehouse_db = Path(warehouse_db)
    if not warehouse_db.exists():
        return None, f"no se encontró {warehouse_db.name}"
    import duckdb

    try:
        con = duckdb.connect(str(warehouse_db), read_only=True)
    except duckdb.Error as exc:  # locked by a writer in another process
        log.warning("report: cannot read %s: %s", warehouse_db, exc)
        return None, f"{warehouse_db.name} no disponible al generar el reporte (en uso por otro proceso)"
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = 'quarantine'"
        ).fetchone()[0]
        if not exists:
            return None, f"{warehouse_db.name} no tiene la tabla raw.quarantine"
        # Only the run that landed the date counts: a later rejected re-delivery keeps its own
        # quarantine rows under its own run id. A row may break several rules (one quarantine
        # row per rule), so the reconciliation with run_audit counts distinct lines.
        has_files = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = 'ingest_files'"
        ).fetchone()[0]
        landed_run = "run_id IN (SELECT run_id FROM raw.ingest_files WHERE as_of_date = ?)" if has_files else "?::DATE IS NOT NULL"
        rows = _rows(
            con,
            "SELECT file_name, rule, coalesce(column_name, '') AS column_name, count(*) AS rows "
            f"FROM raw.quarantine WHERE as_of_date = ? AND {landed_run} "
            "GROUP BY ALL ORDER BY rows DESC, file_name, rule",
            [day, day],
        )
        lines = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT file_name, line_number FROM raw.quarantine "
            f"WHERE as_of_date = ? AND {landed_run})",
            [day, day],
        ).fetchone()[0]
        for row in rows:
            row["distinct_lines"] = int(lines)
    finally:
        con.close()
    return rows, ""


def derived_checks(data: ReportData, quarantine_threshold: float | None = None) -> list[Check]:
    """Reconciliations the report can verify itself from the published tables."""
    checks: list[Check] = []
    audit = data.audit
    if audit is None:
        checks.append(Check("Registro de auditoría (run_audit) de la fecha", False, "no hay fila en run_audit"))
        return checks
    checks.append(
        Check(
            "Corrida publicada (estructura, control y reglas bloqueantes superadas)",
            str(audit.get("outcome", "")).startswith("published"),
            f"resultado: {audit.get('outcome')}",
        )
    )
    published = audit.get("rows_published")
    if published is not None:
        checks.append(
            Check(
                "Filas publicadas = préstamos en segment_assignments",
                int(published) == data.kpis.loans,
                f"run_audit: {int(published):,} · segment_assignments: {data.kpis.loans:,}",
            )
        )
    for f in data.input_files:
        read, quarantined, landed = f.get("rows_read"), f.get("rows_quarantined"), f.get("rows_landed")
        if None not in (read, quarantined, landed):
            checks.append(
                Check(
                    f"{f.get('file_name')}: leídas = cargadas + cuarentena",
                    int(read) == int(landed) + int(quarantined),
                    f"{int(read):,} = {int(landed):,} + {int(quarantined):,}",
                )
            )
            if quarantine_threshold is not None and int(read) > 0:
                share = int(quarantined) / int(read)
                checks.append(
                    Check(
                        f"{f.get('file_name')}: cuarentena dentro del umbral",
                        share <= quarantine_threshold,
                        f"{share:.2%} de las filas (umbral {quarantine_threshold:.2%})",
                    )
                )
    if data.quarantine is not None and audit.get("rows_quarantined") is not None:
        total = int(data.quarantine[0]["distinct_lines"]) if data.quarantine else 0
        checks.append(
            Check(
                "Cuarentena del almacén = filas en cuarentena de run_audit",
                total == int(audit["rows_quarantined"]),
                f"raw.quarantine (líneas distintas): {total:,} · run_audit: {int(audit['rows_quarantined']):,}",
            )
        )
    return checks
