"""Parquet export of the BI tables, for tools that read files (Spark, pandas, Power BI...).

Layout (Hive style, one file per table and date)::

    <warehouse>/parquet/<table>/as_of_date=YYYY-MM-DD/part-0.parquet

``as_of_date`` lives in the folder name only, as Hive partitioning expects (pyarrow
refuses a dataset where the column is both in the path and in the file); DuckDB's
``read_parquet('.../segment_assignments/*/*.parquet')`` and pyarrow's
``dataset(..., partitioning='hive')`` both restore it. Files are exported from the new
serving file while it is being staged, so Parquet and serving.duckdb hold the same rows,
and each file is swapped in with one atomic rename (see files.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from orchestration.publish.files import Staging
from orchestration.publish.serving import ALIAS, table_exists


def partition_file(root: Path, table: str, day: dt.date) -> Path:
    return root / table / f"as_of_date={day.isoformat()}" / "part-0.parquet"


def stage_parquet(
    con, staging: Staging, root: Path, dates: list[dt.date], tables: list[str]
) -> list[Path]:
    """Write each (table, date) from the attached new serving file into ``staging``."""
    written = []
    for table in tables:
        if not table_exists(con, "main", table, ALIAS):
            continue
        for day in dates:
            final = partition_file(root, table, day)
            tmp = staging.path_for(final, f"parquet/{table}/{day.isoformat()}.parquet")
            # No ORDER BY: a date's rows are stored sorted and DuckDB keeps scan order.
            con.execute(
                f"COPY (SELECT * EXCLUDE (as_of_date) FROM {ALIAS}.main.{table} "
                f"WHERE as_of_date = DATE '{day.isoformat()}') TO '{tmp}' (FORMAT parquet)"
            )
            written.append(final)
    return written
