"""Writing one landing folder: the four extracts in the requested dialect, then ``_control.csv``.

Columns are turned into text once (money from integer cents, so there is never a float
rounding artefact; dates as ``YYYY-MM-DD`` or ``DD/MM/YYYY``), bad rows may be inserted
as text, and pyarrow writes the CSV. Control totals are summed from the text as written,
so an injected bad row is a quarantine case, never a control mismatch.
"""

from __future__ import annotations

import gzip as gzip_lib
import os
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from orchestration.simulate.people import CUSTOMER_COLUMNS
from orchestration.simulate.portfolio import NULL_DAY

TEXT, DATE, MONEY, INT = "text", "date", "money", "int"

LOANS_SPEC = (
    ("loan_id", TEXT), ("customer_id", TEXT), ("credit_type", TEXT), ("product_code", TEXT),
    ("currency", TEXT), ("disbursement_date", DATE), ("maturity_date", DATE), ("original_amount", MONEY),
    ("outstanding_principal", MONEY), ("overdue_amount", MONEY), ("installment_amount", MONEY),
    ("next_due_date", DATE), ("days_past_due", INT), ("accounting_status", TEXT), ("guarantee_type", TEXT),
    ("branch_code", TEXT),
)
PAYMENTS_SPEC = (
    ("payment_id", TEXT), ("loan_id", TEXT), ("payment_date", DATE), ("amount", MONEY),
    ("currency", TEXT), ("channel", TEXT), ("is_reversal", TEXT),
)
CUSTOMERS_SPEC = tuple((c, TEXT) for c in CUSTOMER_COLUMNS)
FX_SPEC = (("currency", TEXT), ("rate_to_pen", TEXT))

# extract name -> (columns, column summed into control_total or None)
EXTRACTS = {
    "loans": (LOANS_SPEC, "outstanding_principal"),
    "payments": (PAYMENTS_SPEC, "amount"),
    "customers": (CUSTOMERS_SPEC, None),
    "fx_rates": (FX_SPEC, None),
}
CONTROL_FILE = "_control.csv"
DATE_FORMATS = {"iso": "%Y-%m-%d", "dmy": "%d/%m/%Y"}


class Dialect:
    """How the lender's core exports files (contract section 1 allows each of these)."""

    def __init__(self, delimiter=",", encoding="utf-8", gzip=False, date_format="iso"):
        if delimiter not in (",", ";"):
            raise ValueError(f"delimiter must be ',' or ';', got {delimiter!r}")
        enc = encoding.lower().replace("_", "-")
        if enc in ("utf8", "utf-8"):
            enc = "utf-8"
        elif enc in ("latin-1", "latin1", "iso-8859-1"):
            enc = "latin-1"
        else:
            raise ValueError(f"encoding must be 'utf-8' or 'latin-1', got {encoding!r}")
        if date_format not in DATE_FORMATS:
            raise ValueError(f"date_format must be 'iso' (YYYY-MM-DD) or 'dmy' (DD/MM/YYYY), got {date_format!r}")
        self.delimiter, self.encoding, self.gzip, self.date_format = delimiter, enc, bool(gzip), date_format

    def file_name(self, extract: str) -> str:
        return f"{extract}.csv.gz" if self.gzip else f"{extract}.csv"

    def format_date(self, day) -> str:
        """One date (datetime.date) as text in this dialect."""
        return day.strftime(DATE_FORMATS[self.date_format])


def money_text(cents: np.ndarray) -> pa.Array:
    """Integer cents as exact 2-decimal text ('1234.50', '-0.05')."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = cents, cents >> 63  # 128-bit two's complement, little endian
    dec = pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words.tobytes())])
    return dec.cast(pa.string())


def date_text(days: np.ndarray, date_format: str) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    null = days == NULL_DAY
    arr = pa.array(np.where(null, 0, days).astype(np.int32), pa.date32(), mask=null)
    if date_format == "iso":
        return arr.cast(pa.string())
    return pc.strftime(arr, DATE_FORMATS[date_format])


def to_text_table(spec, data: dict, date_format: str) -> pa.Table:
    cols = {}
    for name, kind in spec:
        value = data[name]
        if kind == MONEY:
            cols[name] = money_text(value)
        elif kind == DATE:
            cols[name] = date_text(value, date_format)
        elif kind == INT:
            cols[name] = pa.array(np.asarray(value, dtype=np.int64)).cast(pa.string())
        else:
            cols[name] = value if isinstance(value, (pa.Array, pa.ChunkedArray)) else pa.array(value, pa.string())
    return pa.table(cols)


def control_total(table: pa.Table, column: str) -> str:
    """Sum of a money column as written, rounded half away from zero to 2 decimals."""
    if table.num_rows == 0:
        return "0.00"
    total = pc.sum(table[column].cast(pa.decimal128(24, 4))).as_py()
    return str(Decimal(total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def encode_csv(table: pa.Table, dialect: Dialect) -> bytes:
    """Header plus rows, unquoted (a value holding the delimiter or a quote is an error)."""
    sink = pa.BufferOutputStream()
    if table.num_rows:
        pa_csv.write_csv(
            table, sink,
            pa_csv.WriteOptions(include_header=False, delimiter=dialect.delimiter, quoting_style="none"),
        )
    data = (dialect.delimiter.join(table.column_names) + "\n").encode() + sink.getvalue().to_pybytes()
    if dialect.encoding == "latin-1":
        data = data.decode("utf-8").encode("latin-1")
    if dialect.gzip:  # level 3: a third of level 6's time for ~15% more bytes; mtime 0 keeps bytes stable
        data = gzip_lib.compress(data, compresslevel=3, mtime=0)
    return data


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_drop(folder: Path, tables: dict[str, pa.Table], dialect: Dialect) -> None:
    """Write the extracts of one date, then ``_control.csv`` (always UTF-8 and ',') last."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (CONTROL_FILE, *(f"{e}.csv{z}" for e in EXTRACTS for z in ("", ".gz"))):
        (folder / stale).unlink(missing_ok=True)  # a re-generation never leaves a mixed drop

    def write(extract: str) -> None:
        write_atomically(folder / dialect.file_name(extract), encode_csv(tables[extract], dialect))

    # pyarrow's CSV writer and zlib release the GIL: the two large files are encoded side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(write, EXTRACTS))
    lines = ["file_name,row_count,control_total"]
    for extract, (_, total_column) in EXTRACTS.items():
        table = tables[extract]
        total = control_total(table, total_column) if total_column else ""
        lines.append(f"{dialect.file_name(extract)},{table.num_rows},{total}")
    write_atomically(folder / CONTROL_FILE, ("\n".join(lines) + "\n").encode("utf-8"))
