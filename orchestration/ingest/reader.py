"""Read one extract file into DuckDB: every variant the contract allows, every cell kept.

``load_extract`` leaves a temp view ``t_<extract>`` on the connection with

* ``_line``      the line the record starts on (header = line 1),
* ``r_<column>`` the cell exactly as read (VARCHAR; used for quarantine ``raw_values``),
* ``<column>``   the typed value, NULL when the cell is empty *or* does not parse.

Variants: ``,`` or ``;`` (decided from the header), UTF-8 or Latin-1 (UTF-8 tried first;
DuckDB refuses invalid UTF-8, then the file is read as Latin-1, which cannot fail), plain or
gzip, dates ``YYYY-MM-DD`` or ``DD/MM/YYYY`` (decided per column by the shape most of its
first 10,000 filled cells have; cells in the other shape count as unparseable). Extra
columns are ignored.

Line numbers: DuckDB reports no line numbers and skips blank lines, so when the file has
exactly one line per record (the usual case, proven by counting line breaks) record n is on
line n + 1; otherwise a Python ``csv`` pass maps every record to the line it starts on.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from orchestration.ingest.drop import DropFile, FileScan, StructuralError, read_header_bytes

MONEY_RE = r"-?[0-9]+(\.[0-9]{1,2})?"
RATE_RE = r"-?[0-9]+(\.[0-9]{1,6})?"
INTEGER_RE = r"-?[0-9]{1,9}"
ISO_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DMY_DATE_RE = r"[0-9]{2}/[0-9]{2}/[0-9]{4}"
TRUE_WORDS = ("true", "t", "1")
FALSE_WORDS = ("false", "f", "0")


@dataclass
class ExtractRead:
    """What was read from one file (kept for the checks' metadata and the quality page)."""

    drop_file: DropFile
    scan: FileScan
    delimiter: str
    encoding: str
    rows_read: int
    date_formats: dict[str, str] = field(default_factory=dict)
    control_total_read: Decimal | None = None
    exact_line_map: bool = False

    @property
    def name(self) -> str:
        return self.drop_file.extract.name

    @property
    def file_name(self) -> str:
        return self.drop_file.file_name

    @property
    def table(self) -> str:
        return f"t_{self.name}"

    @property
    def line_sql(self) -> str:
        """``_line`` of a row of ``src_<extract>`` aliased ``s`` (joined with ``line_join``)."""
        return "m.line" if self.exact_line_map else "CAST(s.rowid + 2 AS INTEGER)"

    @property
    def line_join(self) -> str:
        if self.exact_line_map:
            return f" JOIN lines_{self.name} m ON m.idx = s.rowid"
        return ""


def sniff_header(drop_file: DropFile) -> tuple[str, list[str]]:
    """(delimiter, lower-cased column names) from the header line."""
    head = read_header_bytes(drop_file)
    if not head.strip():
        raise StructuralError(
            f"{drop_file.file_name}: line 1 is empty; expected the header "
            f"({','.join(drop_file.extract.column_names)})",
            drop_file.extract.name,
        )
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    try:
        names = next(csv.reader([text], delimiter=delimiter))
    except csv.Error as exc:  # e.g. a stray carriage return: a binary or corrupt file
        raise StructuralError(
            f"{drop_file.file_name}: line 1 is not a CSV header ({exc}); expected "
            f"{','.join(drop_file.extract.column_names)}",
            drop_file.extract.name,
        ) from None
    return delimiter, [n.strip().lower() for n in names]


def _duckdb_reason(message: str) -> tuple[int | None, str]:
    """(line, short reason) out of a DuckDB CSV error message."""
    line_match = re.search(r"CSV Error on Line: (\d+)", message)
    cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if cols:
        reason = f"{cols.group(2)} fields, expected {cols.group(1)} as in the header"
    else:
        lines = [ln.strip() for ln in message.splitlines()]
        reason = lines[0]
        for i, ln in enumerate(lines):
            if ln.startswith(("Possible fixes", "Possible Solution")):
                before = [x for x in lines[:i] if x and not x.startswith("Original Line")]
                if before:
                    reason = before[-1]
                break
        reason = re.sub(r"^(Invalid Input Error|IO Error|Conversion Error): ", "", reason)
    return (int(line_match.group(1)) if line_match else None), reason


def _read_csv_sql(drop_file: DropFile, n_columns: int, delimiter: str, encoding: str) -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_columns))
    path = str(drop_file.path).replace("'", "''")
    return (
        f"read_csv('{path}', header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = '{delimiter}', quote = '\"', escape = '\"', strict_mode = true, "
        f"null_padding = false, encoding = '{encoding}', "
        f"compression = '{'gzip' if drop_file.gzipped else 'none'}')"
    )


def _exact_line_map(drop_file: DropFile, delimiter: str, encoding: str) -> list[int]:
    """Line each record starts on, via Python's csv (only when records span lines or blank
    lines exist: slower, exact)."""
    opener = gzip.open if drop_file.gzipped else open
    py_encoding = "utf-8-sig" if encoding == "utf-8" else "latin-1"
    with opener(drop_file.path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=py_encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True)
        next(reader, None)  # header
        starts = []
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if row:
                starts.append(start)
    return starts


def load_extract(con, drop_file: DropFile, scan: Callable[[], FileScan]) -> ExtractRead:
    """Read the file into ``t_<extract>`` (see module docstring) or raise StructuralError.

    ``scan`` returns the file's digest and line count (computed in another thread while
    DuckDB reads); its error, when it has one, is the clearer one (a truncated gzip), so it
    is preferred over DuckDB's.
    """
    extract = drop_file.extract
    try:
        delimiter, header = sniff_header(drop_file)
    except StructuralError:
        scan()
        raise
    positions = {}
    for name in extract.column_names:
        if name not in header:
            raise StructuralError(
                f"{drop_file.file_name}: required column {name} is missing from the header "
                f"(line 1: {delimiter.join(header)})",
                extract.name,
            )
        positions[name] = header.index(name)

    src = f"src_{extract.name}"
    picks = ", ".join(f'c{positions[n]} AS "r_{n}"' for n in extract.column_names)
    typed_columns = [c for c in extract.columns if c.kind != "text"]
    encoding = "utf-8"
    for encoding in ("utf-8", "latin-1"):
        csv_sql = _read_csv_sql(drop_file, len(header), delimiter, encoding)
        try:
            date_formats = _detect_date_formats(con, f"(SELECT {picks} FROM {csv_sql})", extract)
            # one table straight from the reader: every cell as read (r_<column>) and the
            # typed value of every non-text column (no second copy, no join to pair them)
            typed = "".join(
                f', {_cast_sql(c.name, c.kind, date_formats.get(c.name))} AS "{c.name}"'
                for c in typed_columns
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {src} AS SELECT s.*{typed} "
                f"FROM (SELECT {picks} FROM {csv_sql}) s"
            )
            break
        except Exception as exc:  # duckdb raises several classes; the message says which
            message = str(exc)
            if encoding == "utf-8" and "Invalid unicode" in message:
                continue
            scan()
            line, reason = _duckdb_reason(message)
            where = f" at line {line}" if line else ""
            raise StructuralError(
                f"{drop_file.file_name}: cannot be read{where}: {reason}", extract.name
            ) from None
    scan_result = scan()

    rows = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
    read = ExtractRead(drop_file, scan_result, delimiter, encoding, rows, date_formats)

    # record n on line n + 1 unless some record spans lines or blank lines exist
    lines = scan_result.physical_lines
    if not (lines == rows + 1 or (rows == 0 and lines <= 1)):
        starts = _exact_line_map(drop_file, delimiter, encoding)
        if len(starts) != rows:
            raise StructuralError(
                f"{drop_file.file_name}: cannot be read consistently: {rows} records by "
                f"DuckDB but {len(starts)} by Python's csv module (check quoting)",
                extract.name,
            )
        import pyarrow as pa

        line_map = pa.table({"idx": pa.array(range(rows), pa.int64()), "line": starts})
        con.register("_line_map", line_map)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE lines_{extract.name} AS "
            "SELECT idx, CAST(line AS INTEGER) AS line FROM _line_map"
        )
        con.unregister("_line_map")
        read.exact_line_map = True

    texts = "".join(f', s."r_{c.name}" AS "{c.name}"' for c in extract.columns if c.kind == "text")
    raws = ", ".join(f's."r_{n}"' for n in extract.column_names)
    typed_names = "".join(f', s."{c.name}"' for c in typed_columns)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {read.table} AS SELECT {read.line_sql} AS _line, "
        f"{raws}{texts}{typed_names} FROM {src} s{read.line_join}"
    )

    if extract.control_total_column:
        total = con.execute(
            f'SELECT round(coalesce(sum(TRY_CAST("r_{extract.control_total_column}" '
            f"AS DECIMAL(38,10))), 0), 2) FROM {src}"
        ).fetchall()[0][0]
        read.control_total_read = Decimal(total).quantize(Decimal("0.01"))
    return read


def _detect_date_formats(con, rows_sql: str, extract) -> dict[str, str]:
    """'iso' or 'dmy' per date column: the shape most of its first 10,000 filled cells have
    (``rows_sql`` yields the raw cells as ``r_<column>``; the LIMIT stops the reading early)."""
    formats = {}
    for column in (c.name for c in extract.columns if c.kind == "date"):
        iso, dmy = con.execute(
            f"SELECT count(*) FILTER (regexp_full_match(v, '{ISO_DATE_RE}')), "
            f"count(*) FILTER (regexp_full_match(v, '{DMY_DATE_RE}')) "
            f'FROM (SELECT "r_{column}" AS v FROM {rows_sql} AS d '
            f'WHERE "r_{column}" IS NOT NULL LIMIT 10000)'
        ).fetchall()[0]
        formats[column] = "dmy" if dmy > iso else "iso"
    return formats


def _cast_sql(name: str, kind: str, date_format: str | None) -> str:
    r = f's."r_{name}"'
    if kind == "text":
        return r
    if kind == "money":
        return f"CASE WHEN regexp_full_match({r}, '{MONEY_RE}') THEN TRY_CAST({r} AS DECIMAL(18,2)) END"
    if kind == "rate":
        return f"CASE WHEN regexp_full_match({r}, '{RATE_RE}') THEN TRY_CAST({r} AS DECIMAL(18,6)) END"
    if kind == "integer":
        return f"CASE WHEN regexp_full_match({r}, '{INTEGER_RE}') THEN TRY_CAST({r} AS INTEGER) END"
    if kind == "date" and date_format == "dmy":
        return (
            f"CASE WHEN regexp_full_match({r}, '{DMY_DATE_RE}') "
            f"THEN CAST(TRY_STRPTIME({r}, '%d/%m/%Y') AS DATE) END"
        )
    if kind == "date":
        return f"CASE WHEN regexp_full_match({r}, '{ISO_DATE_RE}') THEN TRY_CAST({r} AS DATE) END"
    if kind == "boolean":
        trues = ", ".join(f"'{w}'" for w in TRUE_WORDS)
        falses = ", ".join(f"'{w}'" for w in FALSE_WORDS)
        return (
            f"CASE WHEN lower({r}) IN ({trues}) THEN true "
            f"WHEN lower({r}) IN ({falses}) THEN false END"
        )
    raise ValueError(f"unknown column kind {kind!r} for {name}")


def raw_values_sql(read: ExtractRead, lines_table: str) -> str:
    """SELECT (_line, raw_values) -- the row as read, as JSON text -- for ``lines_table``'s lines.

    Rows are fetched by position (rowid) rather than by scanning every raw column of the
    file: quarantined rows are few, the file may hold a million.
    """
    name = read.drop_file.extract.name
    pairs = ", ".join(f"'{c}', r.\"r_{c}\"" for c in read.drop_file.extract.column_names)
    return (
        f"SELECT k._line, CAST(json_object({pairs}) AS VARCHAR) AS raw_values FROM "
        f"(SELECT s.rowid AS rid, {read.line_sql} AS _line FROM src_{name} s{read.line_join} "
        f"WHERE {read.line_sql} IN (SELECT _line FROM {lines_table})) k "
        f"JOIN src_{name} r ON r.rowid = k.rid"
    )


def type_error_sql(read: ExtractRead) -> str | None:
    """SELECT (_line, rule, column_name) for cells present but not parseable as their type."""
    parts = [
        f"SELECT _line, 'type:{c.name}' AS rule, '{c.name}' AS column_name FROM {read.table} "
        f'WHERE "r_{c.name}" IS NOT NULL AND "{c.name}" IS NULL'
        for c in read.drop_file.extract.columns
        if c.kind != "text"
    ]
    return " UNION ALL ".join(parts) if parts else None

