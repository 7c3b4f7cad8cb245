"""Ingest one business date's drop: prove it sound, then land it whole or not at all.

Order of work for date D (one DuckDB connection, temp tables per extract):

1. structure: ``_control.csv`` present, every file present and listed, header has every
   required column, file readable, row counts and control totals as promised;
2. the landing transaction opens (D's rows in raw.* are deleted in it: a re-run replaces
   the date);
3. row rules: type errors (cells that do not parse) found by DuckDB, then the GX suites
   (``orchestration/quality``) in the order fx_rates, customers, loans, payments, so that
   references point at rows that passed (loan -> customer of D, payment -> loan of D or
   earlier); every failing (line, rule) becomes a quarantine row. As soon as a file's
   quarantine is known its other rows are inserted into raw.*, in a thread, while GX (pure
   Python) checks the next file: DuckDB releases the GIL, so the write, the biggest cost
   after reading, runs on the second core;
4. structure again: every non-PEN currency used by a passing loan or payment has a valid
   rate (never assume one);
5. the quarantine threshold per file (share of rows read, strictly above = reject);
6. finish: either *landed* -- the same transaction proves landed + quarantined = read,
   writes D's quarantine rows, raw.ingest_files and raw.drops 'landed' and commits -- or
   *rejected* -- the transaction is rolled back and a transaction of its own writes
   raw.drops 'rejected' with the one-line reason (and, for a threshold rejection, this
   run's quarantine rows); raw.* for D stays as it was.

A row quarantined for several rules has one quarantine row per rule and counts once in
``rows_quarantined``, so landed + quarantined = read for every file. A cell that does not
parse is reported as ``type:<column>`` only (not also ``not_null:<column>``).

raw.quarantine keeps, per date, the rows of the run that landed it (older rows of that
date are replaced) plus the rows of any later rejected run (``run_id`` tells them apart;
raw.drops says which run landed and which were rejected).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from orchestration.ingest.drop import (
    CONTROL_FILE,
    ControlRow,
    StructuralError,
    locate_files,
    read_control,
    scan_file,
)
from orchestration.ingest.reader import ExtractRead, load_extract, raw_values_sql, type_error_sql
from orchestration.ingest.schema import DISPLAY_ORDER, EXTRACTS, ensure_raw_schema
from orchestration.quality.suites import RuleOutcome, SuiteRunner

KEYS = {"fx_rates": "currency", "customers": "customer_id", "loans": "loan_id"}

TYPE_DESCRIPTIONS = {
    "date": "es una fecha válida AAAA-MM-DD o DD/MM/AAAA",
    "money": "es un monto con punto decimal y a lo más 2 decimales",
    "rate": "es una tasa con punto decimal y a lo más 6 decimales",
    "integer": "es un número entero",
    "boolean": "es true/false o 1/0",
}


@dataclass
class FileResult:
    extract: str
    read: ExtractRead | None = None
    control: ControlRow | None = None
    rules: list[RuleOutcome] = field(default_factory=list)
    rows_quarantined: int = 0
    rows_landed: int = 0
    threshold: float = 0.01

    @property
    def file_name(self) -> str:
        return self.read.file_name if self.read else f"{self.extract}.csv"

    @property
    def rows_read(self) -> int:
        return self.read.rows_read if self.read else 0

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def over_threshold(self) -> bool:
        return self.share > self.threshold

    def rule_counts(self) -> Counter:
        return Counter({r.rule: r.failing_count for r in self.rules if r.failing_count})


@dataclass
class DropResult:
    as_of_date: str
    run_id: str
    status: str = "pending"  # landed | rejected
    reason: str | None = None  # structure | rules (when rejected)
    message: str = ""
    failed_extract: str | None = None
    files: dict[str, FileResult] = field(default_factory=dict)
    structure_done: set[str] = field(default_factory=set)  # extracts whose structure passed
    rules_done: bool = False
    report_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds (all threads)

    @contextmanager
    def timed(self, phase: str):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start
            self.cpu_timings[phase] = (
                self.cpu_timings.get(phase, 0.0) + time.process_time() - cpu
            )

    @property
    def landed(self) -> bool:
        return self.status == "landed"


def ingest_drop(
    con,
    cartera,
    business_date: str,
    run_id: str,
    runner: Callable[[], SuiteRunner],
    log: logging.Logger | None = None,
) -> DropResult:
    """Ingest the drop of ``business_date``; never raises for a bad drop (see ``status``)."""
    log = log or logging.getLogger(__name__)
    con.execute("SET enable_progress_bar = false")  # DuckDB would draw bars into the run log
    ensure_raw_schema(con)
    folder = cartera.drop_dir(business_date)
    result = DropResult(business_date, run_id)
    tx = _Transaction(con)
    try:
        try:
            _check_structure(con, folder, result, cartera.quarantine_threshold)
            with result.timed("gx_setup"):
                suite_runner = runner()
            # The landing transaction opens before the row rules: each file's rows are
            # written (in a thread; DuckDB releases the GIL) while GX checks the next file.
            tx.begin()
            for extract in EXTRACTS:  # a re-run replaces the date
                con.execute(f"DELETE FROM {extract.table} WHERE as_of_date = ?", [business_date])
            writer = _RowWriter(con, result)
            _apply_rules(con, result, suite_runner, business_date, writer)
            with result.timed("write:rows (rest)"):
                writer.start()
                writer.wait()
            with result.timed("fx_coverage"):
                _check_fx_coverage(con, result)
        except StructuralError as exc:
            tx.rollback()
            result.status, result.reason = "rejected", "structure"
            result.message, result.failed_extract = exc.message, exc.extract
            _record_rejection(con, result, quarantine=None)
            log.error(f"drop {business_date} rejected: {exc.message}")
            _write_page(result, cartera, log)
            return result

        over = [f for f in _ordered(result.files) if f.over_threshold]
        if over:
            result.status, result.reason = "rejected", "rules"
            result.failed_extract = over[0].extract
            result.message = "; ".join(_threshold_message(f) for f in over)
            with result.timed("write:finish"):
                quarantine = _quarantine_rows(con, result)  # q_* tables vanish on rollback
                tx.rollback()
                _record_rejection(con, result, quarantine=quarantine)
            log.error(f"drop {business_date} rejected: {result.message}")
        else:
            with result.timed("write:finish"):
                _land(con, result, writer.inserted)
                tx.commit()
            result.status = "landed"
            log.info(f"drop {business_date} landed: {result.message}")
        _write_page(result, cartera, log)
        return result
    finally:
        tx.rollback()  # only if still open: an unexpected error left it so
        _drop_temp_tables(con)


class _Transaction:
    """The landing transaction of one drop: opened after the structure checks, committed
    only when the drop lands; any other way out rolls it back (raw.* for D untouched)."""

    def __init__(self, con):
        self.con, self.open = con, False

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")
        self.open = True

    def commit(self) -> None:
        self.con.execute("COMMIT")
        self.open = False

    def rollback(self) -> None:
        if self.open:
            self.open = False
            _rollback_quietly(self.con)


def _rollback_quietly(con) -> None:
    """ROLLBACK on the way out of an error. After a failed COMMIT (a full disk, say) DuckDB
    has already ended the transaction; the "no transaction is active" that ROLLBACK then
    raises must not replace the COMMIT's error, which is the one a person needs to read."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        if "no transaction is active" not in str(exc).lower():
            raise


class _RowWriter:
    """Inserts a file's landed rows (read minus quarantined lines) into raw.* inside the open
    landing transaction, in a worker thread, while the caller runs GX on the next file.

    The connection is never used by two threads at once: the caller ``start``s the writer
    only when it is about to spend time in pure Python (a GX validation) and ``wait``s
    before touching the connection again.
    """

    def __init__(self, con, result: DropResult):
        self.con, self.result = con, result
        self.queued: list[str] = []
        self.inserted: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def queue(self, name: str) -> None:
        """Rows of ``name`` can be written (its q_<name> is registered)."""
        self.queued.append(name)

    def start(self) -> None:
        names, self.queued = self.queued, []
        if names:
            self._thread = threading.Thread(
                target=self._write, args=(names,), name="raw-writer", daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write(self, names: list[str]) -> None:
        try:
            for name in names:
                start = time.perf_counter()
                self.inserted[name] = _insert_rows(self.con, self.result, name)
                self.result.timings[f"write:{name} (in background)"] = (
                    time.perf_counter() - start
                )
        except BaseException as exc:  # re-raised by wait() in the caller's thread
            self._error = exc


def _write_page(result: DropResult, cartera, log) -> None:
    from orchestration.quality.docs import write_quality_page

    with result.timed("quality_page"):
        result.report_path = write_quality_page(result, cartera.warehouse_path)
    log.info(f"quality page for {result.as_of_date}: {result.report_path}")


# ---- 1. structure -----------------------------------------------------------------------


def _check_structure(con, folder: Path, result: DropResult, threshold: float) -> None:
    control = read_control(folder)
    files = locate_files(folder, control)
    # digests and line counts in a thread (hashlib releases the GIL) while DuckDB reads
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    scans = {f.extract.name: pool.submit(scan_file, f) for f in files}
    try:
        for drop_file in files:
            _read_one(con, drop_file, control, scans, result, threshold)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_one(con, drop_file, control, scans, result: DropResult, threshold: float) -> None:
    name = drop_file.extract.name
    file_result = FileResult(name, control=control[drop_file.file_name], threshold=threshold)
    result.files[name] = file_result

    def scan():
        with result.timed(f"sha256+lines (wait):{name}"):
            return scans[name].result()

    with result.timed(f"read+cast:{name}"):
        read = load_extract(con, drop_file, scan)
    file_result.read = read
    expected = file_result.control
    if read.rows_read != expected.row_count:
        raise StructuralError(
            f"{read.file_name}: row_count {expected.row_count} expected by {CONTROL_FILE}, "
            f"read {read.rows_read}",
            name,
        )
    if drop_file.extract.control_total_column:
        if expected.control_total is None:
            raise StructuralError(
                f"{CONTROL_FILE}: control_total for {read.file_name} is empty; expected "
                f"the sum of {drop_file.extract.control_total_column} (2 decimals)",
                name,
            )
        promised = expected.control_total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if promised != read.control_total_read:
            raise StructuralError(
                f"{read.file_name}: control_total {expected.control_total:.2f} expected by "
                f"{CONTROL_FILE}, read {read.control_total_read:.2f} (sum of "
                f"{drop_file.extract.control_total_column})",
                name,
            )
    result.structure_done.add(name)


# ---- 3. row rules -------------------------------------------------------------------------


def _apply_rules(
    con, result: DropResult, runner: SuiteRunner, business_date: str, writer: _RowWriter
) -> None:
    from orchestration.quality.frames import build_frame, prepare_earlier_loans

    for extract in EXTRACTS:
        file_result = result.files[extract.name]
        read = file_result.read
        with result.timed(f"type_rules:{extract.name}"):
            type_rules, type_lines = _type_rules(con, read)
        with result.timed(f"gx_frame:{extract.name}"):
            if extract.name == "payments":
                prepare_earlier_loans(con, business_date)
            frame = build_frame(con, extract, read.table, business_date)
        writer.start()  # the previous file's rows go to raw.* while GX runs
        try:
            with result.timed(f"gx_validate:{extract.name}"):
                gx_rules = runner.validate(extract.name, frame, business_date)
        finally:
            with result.timed(f"write (wait):{extract.name}"):
                writer.wait()
        del frame
        for rule in gx_rules:
            if rule.rule.startswith("not_null:"):
                # a cell that did not parse is NULL once typed: already reported as type:<col>
                unparsed = type_lines.get(rule.column)
                if unparsed:
                    rule.failing_lines = [n for n in rule.failing_lines if n not in unparsed]
                    rule.sample = [s for s in rule.sample if s["line"] not in unparsed]
        file_result.rules = type_rules + gx_rules
        with result.timed(f"quarantine:{extract.name}"):
            _register_quarantine(con, file_result)
            key = KEYS.get(extract.name)
            if key:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE ok_{extract.name} AS SELECT {key} "
                    f"FROM {read.table} ANTI JOIN q_{extract.name} USING (_line)"
                )
        writer.queue(extract.name)
    result.rules_done = True


def _type_rules(con, read: ExtractRead) -> tuple[list[RuleOutcome], dict[str, set[int]]]:
    extract = read.drop_file.extract
    typed_columns = [c for c in extract.columns if c.kind != "text"]
    lines: dict[str, list[int]] = {c.name: [] for c in typed_columns}
    sql = type_error_sql(read)
    if sql:
        for line, _rule, column in con.execute(f"{sql} ORDER BY 1").fetchall():
            lines[column].append(line)
    outcomes = []
    for col in typed_columns:
        failing = lines[col.name]
        sample = []
        if failing:
            picked = ", ".join(str(n) for n in failing[:5])
            sample = [
                {"line": line, col.name: value}
                for line, value in con.execute(
                    f'SELECT _line, "r_{col.name}" FROM {read.table} '
                    f"WHERE _line IN ({picked}) ORDER BY _line"
                ).fetchall()
            ]
        outcomes.append(
            RuleOutcome(
                extract=extract.name,
                rule=f"type:{col.name}",
                expectation_type="type (DuckDB)",
                column=col.name,
                description=f"{col.name} {TYPE_DESCRIPTIONS[col.kind]}",
                element_count=read.rows_read,
                failing_lines=failing,
                sample=sample,
            )
        )
    return outcomes, {c: set(v) for c, v in lines.items() if v}


def _register_quarantine(con, file_result: FileResult) -> None:
    """q_<extract>(_line, rule, column_name): one row per broken rule and line."""
    import pyarrow as pa

    lines, rules, columns = [], [], []
    for rule in file_result.rules:
        lines.extend(rule.failing_lines)
        rules.extend([rule.rule] * rule.failing_count)
        columns.extend([rule.column] * rule.failing_count)
    table = pa.table(
        {
            "_line": pa.array(lines, pa.int32()),
            "rule": pa.array(rules, pa.string()),
            "column_name": pa.array(columns, pa.string()),
        }
    )
    view = f"_q_{file_result.extract}_arrow"
    con.register(view, table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE q_{file_result.extract} AS SELECT * FROM {view}")
    con.unregister(view)
    file_result.rows_quarantined = len(set(lines))
    file_result.rows_landed = file_result.rows_read - file_result.rows_quarantined


# ---- 4. fx coverage -----------------------------------------------------------------------


def _check_fx_coverage(con, result: DropResult) -> None:
    fx_file = result.files["fx_rates"].file_name
    parts = []
    for order, name in enumerate(("loans", "payments")):
        parts.append(
            f"SELECT {order} AS o, currency, min(_line) AS line FROM t_{name} "
            f"ANTI JOIN q_{name} USING (_line) WHERE currency IS NOT NULL AND currency <> 'PEN' "
            f"AND currency NOT IN (SELECT currency FROM ok_fx_rates) GROUP BY currency"
        )
    missing = con.execute(" UNION ALL ".join(parts) + " ORDER BY o, line").fetchall()
    if not missing:
        return
    order, currency, line = missing[0]
    user = result.files[("loans", "payments")[order]].file_name
    bad = con.execute(
        "SELECT q._line, string_agg(q.rule, ', ' ORDER BY q.rule) FROM t_fx_rates t "
        "JOIN q_fx_rates q USING (_line) WHERE t.r_currency = ? GROUP BY q._line "
        "ORDER BY q._line LIMIT 1",
        [currency],
    ).fetchall()
    detail = f" (its row on line {bad[0][0]} broke {bad[0][1]})" if bad else ""
    raise StructuralError(
        f"{fx_file} has no rate for {currency}{detail}, used by {user} line {line}; "
        "a rate is never assumed",
        "fx_rates",
    )


# ---- 5. threshold -------------------------------------------------------------------------


def _threshold_message(file_result: FileResult) -> str:
    top = ", ".join(f"{rule} {n}" for rule, n in file_result.rule_counts().most_common(3))
    return (
        f"{file_result.file_name}: {file_result.rows_quarantined} of {file_result.rows_read} "
        f"rows ({file_result.share:.2%}) broke row rules, above the "
        f"{file_result.threshold:.2%} quarantine threshold (most frequent: {top})"
    )


# ---- 2. and 6. write ---------------------------------------------------------------------


def _now() -> dt.datetime:
    """UTC, naive (raw.* timestamps are UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _insert_rows(con, result: DropResult, name: str) -> int:
    """Inside the open landing transaction: insert the landed rows of one file into raw.*."""
    d = result.as_of_date
    read = result.files[name].read
    cols = ", ".join(f'"{c}"' for c in read.drop_file.extract.column_names)
    return con.execute(
        f"INSERT INTO raw.{name} SELECT CAST(? AS DATE), {cols}, _line "
        f"FROM {read.table} ANTI JOIN q_{name} USING (_line)",
        [d],
    ).fetchall()[0][0]


def _quarantine_sql(result: DropResult, name: str) -> str:
    """SELECT the raw.quarantine rows of one file (parameters: as_of_date, run_id, file_name)."""
    raw = raw_values_sql(result.files[name].read, f"q_{name}")
    return (
        "SELECT CAST(? AS DATE) AS as_of_date, ? AS run_id, ? AS file_name, "
        "q._line AS line_number, q.rule, q.column_name, v.raw_values "
        f"FROM q_{name} q JOIN ({raw}) v USING (_line) ORDER BY q._line, q.rule"
    )


def _quarantine_params(result: DropResult, name: str) -> list:
    return [result.as_of_date, result.run_id, result.files[name].file_name]


def _insert_quarantine(con, result: DropResult) -> None:
    for name in DISPLAY_ORDER:
        con.execute(
            f"INSERT INTO raw.quarantine {_quarantine_sql(result, name)}",
            _quarantine_params(result, name),
        )


def _quarantine_rows(con, result: DropResult):
    """This run's quarantine rows as an Arrow table (kept across the rollback of a rejection)."""
    import pyarrow as pa

    return pa.concat_tables(
        con.execute(_quarantine_sql(result, name), _quarantine_params(result, name)).to_arrow_table()
        for name in DISPLAY_ORDER
    )


def _land(con, result: DropResult, inserted: dict[str, int]) -> None:
    """Finish the open landing transaction (the caller commits): prove landed + quarantined
    = read for the rows ``_RowWriter`` inserted, then the bookkeeping rows."""
    d, now = result.as_of_date, _now()
    summary = ", ".join(
        f"{f.file_name} {f.rows_landed} of {f.rows_read} rows ({f.rows_quarantined} quarantined)"
        for f in _ordered(result.files)
    )
    result.message = summary
    for table in ("raw.quarantine", "raw.ingest_files"):
        con.execute(f"DELETE FROM {table} WHERE as_of_date = ?", [d])
    for name in DISPLAY_ORDER:
        file_result = result.files[name]
        landed = inserted[name]
        if landed != file_result.rows_landed or (
            landed + file_result.rows_quarantined != file_result.rows_read
        ):
            raise RuntimeError(
                f"{file_result.file_name}: landed {landed} + quarantined "
                f"{file_result.rows_quarantined} != read {file_result.rows_read}"
            )
        con.execute(
            "INSERT INTO raw.ingest_files VALUES (CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?)",
            [
                d,
                result.run_id,
                file_result.file_name,
                file_result.read.scan.sha256,
                file_result.rows_read,
                file_result.rows_quarantined,
                file_result.rows_landed,
                now,
            ],
        )
    _insert_quarantine(con, result)
    con.execute(
        "INSERT INTO raw.drops VALUES (CAST(? AS DATE), ?, 'landed', ?, ?)",
        [d, result.run_id, summary, now],
    )


def _record_rejection(con, result: DropResult, quarantine) -> None:
    """Own transaction: raw.drops 'rejected' and, for a threshold rejection, this run's
    quarantine rows (``quarantine``, from ``_quarantine_rows``)."""
    con.execute("BEGIN TRANSACTION")
    try:
        if quarantine is not None:
            con.execute(
                "DELETE FROM raw.quarantine WHERE as_of_date = ? AND run_id = ?",
                [result.as_of_date, result.run_id],
            )
            con.register("_rejected_quarantine", quarantine)
            try:
                con.execute("INSERT INTO raw.quarantine SELECT * FROM _rejected_quarantine")
            finally:
                con.unregister("_rejected_quarantine")
        con.execute(
            "INSERT INTO raw.drops VALUES (CAST(? AS DATE), ?, 'rejected', ?, ?)",
            [result.as_of_date, result.run_id, result.message, _now()],
        )
        con.execute("COMMIT")
    except BaseException:
        _rollback_quietly(con)
        raise


def _ordered(files: dict[str, FileResult]) -> list[FileResult]:
    return [files[n] for n in DISPLAY_ORDER if n in files]


def _drop_temp_tables(con) -> None:
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    for (name,) in views:
        con.execute(f'DROP VIEW IF EXISTS temp."{name}"')
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    for (name,) in tables:
        con.execute(f'DROP TABLE IF EXISTS temp."{name}"')
