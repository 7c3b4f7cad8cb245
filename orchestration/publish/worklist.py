"""The operations worklist: restricted output with names and phones (PII).

``<warehouse>/restricted/worklist_YYYY-MM-DD.csv``: restricted.daily_actions of the date
(the next business day's contacts), ordered by priority. The folder is mode 0700 and the
file 0600 (owner only); BI tables never receive these columns.

The file is meant to be opened in a spreadsheet, so it is UTF-8 with a byte-order mark
(Excel then shows ñ and accents correctly) and every text cell that a spreadsheet would
run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
prefixed with a single quote (OWASP "CSV injection"). Phones such as ``+51 987 654 321``
are therefore written ``'+51 987 654 321``. Numbers and dates are typed values, not text,
and are written as they are.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from orchestration.publish.files import Staging

SOURCE = "restricted.daily_actions"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff".encode("utf-8")


def _neutralised(column: str) -> str:
    """SQL for a text column whose formula-looking cells get a leading single quote."""
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_START)
    quote = "''''"  # SQL literal for one single quote
    return (
        f'CASE WHEN left("{column}", 1) IN ({starts}) THEN {quote} || "{column}" '
        f'ELSE "{column}" END AS "{column}"'
    )


def worklist_path(restricted_dir: Path, day: dt.date) -> Path:
    return restricted_dir / f"worklist_{day.isoformat()}.csv"


def restricted_dir(warehouse: Path) -> Path:
    path = warehouse / "restricted"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def stage_worklists(con, staging: Staging, warehouse: Path, dates: list[dt.date]) -> dict[str, int]:
    """Write each date's worklist CSV into ``staging`` (0600); returns rows per date.

    DuckDB writes the CSV (fast at a million loans); Python only prepends the byte-order
    mark while copying it into a file created 0600. The staging folder is 0700, so the
    intermediate file is never readable by others either.
    """
    folder = restricted_dir(warehouse)
    schema, table = SOURCE.split(".")
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, table],
    ).fetchall()
    select = ", ".join(_neutralised(c) if t == "VARCHAR" else f'"{c}"' for c, t in columns)
    rows_by_date: dict[str, int] = {}
    for day in dates:
        name = f"worklist_{day.isoformat()}.csv"
        tmp = staging.path_for(worklist_path(folder, day), f"restricted/{name}")
        body = tmp.with_name(tmp.name + ".body")
        count = con.execute(
            f"COPY (SELECT {select} FROM {SOURCE} WHERE as_of_date = DATE '{day.isoformat()}' "
            f"ORDER BY priority, loan_id) TO '{body}' (FORMAT csv, HEADER true)"
        ).fetchone()[0]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "wb") as out, open(body, "rb") as src:
            out.write(BOM)
            shutil.copyfileobj(src, out, 1 << 20)
        body.unlink()
        rows_by_date[day.isoformat()] = count
    return rows_by_date
