"""One landing folder: which files it holds, what ``_control.csv`` promises, file digests.

Everything here is a *structural* check: a failure rejects the whole drop with one line
that names the file (and line or column) and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from orchestration.ingest.schema import CONTROL_COLUMNS, CONTROL_FILE, EXTRACTS, Extract


class StructuralError(Exception):
    """The drop cannot be trusted as a whole; ``extract`` names the file's extract if any."""

    def __init__(self, message: str, extract: str | None = None):
        super().__init__(message)
        self.message = message
        self.extract = extract


@dataclass(frozen=True)
class ControlRow:
    file_name: str
    row_count: int
    control_total: Decimal | None


@dataclass(frozen=True)
class DropFile:
    extract: Extract
    path: Path

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


def read_control(folder: Path) -> dict[str, ControlRow]:
    """Parse ``_control.csv`` (always UTF-8 with ','); its absence means the drop is incomplete."""
    path = folder / CONTROL_FILE
    if not path.is_file():
        raise StructuralError(
            f"{folder.name}: drop incomplete: {CONTROL_FILE} not found in {folder} "
            "(it is written last, after every extract file)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise StructuralError(f"{CONTROL_FILE}: cannot be read as UTF-8 text: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    for col in CONTROL_COLUMNS:
        if col not in header:
            raise StructuralError(
                f"{CONTROL_FILE}: missing column {col} in the header (line 1); "
                f"expected {','.join(CONTROL_COLUMNS)}"
            )
    reader.fieldnames = header
    rows: dict[str, ControlRow] = {}
    for record in reader:
        line = reader.line_num
        name = (record["file_name"] or "").strip()
        if not name:
            continue
        try:
            count = int((record["row_count"] or "").strip())
        except ValueError:
            raise StructuralError(
                f"{CONTROL_FILE} line {line}: row_count {record['row_count']!r} for {name} "
                "is not a whole number"
            ) from None
        total_text = (record["control_total"] or "").strip()
        try:
            total = Decimal(total_text) if total_text else None
        except InvalidOperation:
            raise StructuralError(
                f"{CONTROL_FILE} line {line}: control_total {total_text!r} for {name} "
                "is not a number"
            ) from None
        rows[name] = ControlRow(name, count, total)
    return rows


def locate_files(folder: Path, control: dict[str, ControlRow]) -> list[DropFile]:
    """Find ``<extract>.csv`` or ``<extract>.csv.gz`` for every extract; each must be in the control."""
    found = []
    for extract in EXTRACTS:
        candidates = [folder / f"{extract.name}.csv", folder / f"{extract.name}.csv.gz"]
        present = [p for p in candidates if p.is_file()]
        if not present:
            raise StructuralError(
                f"{extract.name}.csv: required file missing from {folder} "
                f"(expected {extract.name}.csv or {extract.name}.csv.gz)",
                extract.name,
            )
        if len(present) > 1:
            raise StructuralError(
                f"{extract.name}.csv: both {present[0].name} and {present[1].name} are in "
                f"{folder}; expected exactly one",
                extract.name,
            )
        path = present[0]
        if path.name not in control:
            listed = ", ".join(sorted(control)) or "nothing"
            raise StructuralError(
                f"{CONTROL_FILE}: no row for {path.name} (it lists {listed}); expected one "
                "row per extract file, named as on disk",
                extract.name,
            )
        found.append(DropFile(extract, path))
    return found


@dataclass(frozen=True)
class FileScan:
    sha256: str
    newlines: int  # physical line breaks in the (decompressed) text
    ends_with_newline: bool

    @property
    def physical_lines(self) -> int:
        return self.newlines + (0 if self.ends_with_newline else 1)


def scan_file(drop_file: DropFile, chunk_size: int = 1 << 22) -> FileScan:
    """sha256 of the bytes on disk and the number of text lines, in one pass.

    The line count lets the reader prove that record n sits on line n + 1 (the fast path)
    or fall back to an exact line map when records span lines or blank lines exist.
    """
    digest = hashlib.sha256()
    newlines = 0
    last = b""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if drop_file.gzipped else None
    try:
        with open(drop_file.path, "rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
                data = chunk
                if inflater is not None:
                    data = inflater.decompress(chunk)
                    while inflater.unused_data:  # concatenated gzip members
                        rest = inflater.unused_data
                        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        data += inflater.decompress(rest)
                if data:
                    newlines += data.count(b"\n")
                    last = data[-1:]
        if inflater is not None:
            tail = inflater.flush()
            if tail:
                newlines += tail.count(b"\n")
                last = tail[-1:]
            if not inflater.eof:
                raise StructuralError(
                    f"{drop_file.file_name}: cannot be read: the gzip stream is truncated "
                    "(file incomplete or corrupt)",
                    drop_file.extract.name,
                )
    except zlib.error as exc:
        raise StructuralError(
            f"{drop_file.file_name}: cannot be read: not a valid gzip file ({exc})",
            drop_file.extract.name,
        ) from None
    return FileScan(digest.hexdigest(), newlines, last == b"\n")


def read_header_bytes(drop_file: DropFile, limit: int = 1 << 16) -> bytes:
    """The first line of the file (decompressed), without its line break."""
    try:
        opener = gzip.open if drop_file.gzipped else open
        with opener(drop_file.path, "rb") as fh:
            head = fh.readline(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise StructuralError(
            f"{drop_file.file_name}: cannot be read: {exc}", drop_file.extract.name
        ) from None
    return head.rstrip(b"\r\n")
