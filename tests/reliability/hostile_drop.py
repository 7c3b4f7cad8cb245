"""Test helper: write a small drop whose files may be hostile, and ingest it in process.

The drop is built from ``tests/ingest/drop_writer.valid_tables`` (a consistent little
portfolio) and written here byte by byte, so a test can mix encodings between files, put
random bytes in a file, or pick the delimiter; ``_control.csv`` is computed independently
of the code under test (row count = records written, control total = exact decimal sum of
the cells that are plain decimals, as the contract defines it).
"""

from __future__ import annotations

import csv
import gzip as gzip_lib
import io
import sys
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ingest"))

from drop_writer import COLUMNS, CONTROL_COLUMN, _text, valid_tables  # noqa: E402

from orchestration.config import CarteraResource  # noqa: E402

DAY = "2026-03-03"
FILE_NAMES = ("loans.csv", "payments.csv", "customers.csv", "fx_rates.csv", "_control.csv")


def plain_sum(values: list[str]) -> str:
    """Contract control total: sum of the cells that are plain decimals with <= 2 decimals."""
    total = Decimal(0)
    for v in values:
        try:
            d = Decimal(v)
        except InvalidOperation:
            continue
        if d.is_finite() and v.strip() == v and "e" not in v.lower() and abs(d) < Decimal(10) ** 16:
            total += d
    return str(total.quantize(Decimal("0.01")))


def encode_csv(rows: list[list[str]], delimiter: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


def write_hostile_drop(landing: Path, tables: dict, *, delimiter=",", encodings=None, gzip=False,
                       raw_bytes: dict | None = None, day: str = DAY) -> Path:
    """Write the four extracts (``raw_bytes[extract]`` replaces a file's content) and the control."""
    folder = landing / day
    folder.mkdir(parents=True, exist_ok=True)
    control = [["file_name", "row_count", "control_total"]]
    for extract, rows in tables.items():
        header = COLUMNS[extract]
        cells = [[_text(r.get(c), "iso") for c in header] for r in rows]
        encoding = (encodings or {}).get(extract, "utf-8")
        data = (raw_bytes or {}).get(extract)
        if data is None:
            data = encode_csv([header, *cells], delimiter, encoding)
        name = f"{extract}.csv.gz" if gzip else f"{extract}.csv"
        (folder / name).write_bytes(gzip_lib.compress(data, mtime=0) if gzip else data)
        column = CONTROL_COLUMN.get(extract)
        total = plain_sum([row[header.index(column)] for row in cells]) if column else ""
        control.append([name, str(len(rows)), total])
    (folder / "_control.csv").write_bytes(encode_csv(control, ",", "utf-8"))
    return folder


def ingest(tmp: Path, runner, day: str = DAY, threshold: float = 1.0):
    """Ingest ``<tmp>/landing/<day>`` directly (no Dagster run): (DropResult, resource)."""
    from orchestration.ingest.pipeline import ingest_drop

    cartera = CarteraResource(landing_dir=str(tmp / "landing"), warehouse_dir=str(tmp / "warehouse"),
                              quarantine_threshold=threshold)
    con = cartera.connect()
    try:
        return ingest_drop(con, cartera, day, f"hyp-{uuid.uuid4().hex[:8]}", lambda: runner), cartera
    finally:
        con.close()


__all__ = ["COLUMNS", "DAY", "FILE_NAMES", "valid_tables", "write_hostile_drop", "ingest", "plain_sum"]
