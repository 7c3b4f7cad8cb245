"""Value-by-value comparison of two ``segment_assignments`` tables for one date.

Used by the harness (B4, B6, smoke) to check that cartera's published rows, the pandas
reference and the single DuckDB query agree exactly: every loan, every column, decimals
compared as exact decimals, nulls equal only to nulls.

Also a command-line oracle for the project's own tests and operators::

    python benchmarks/compare.py --landing DIR --warehouse DIR --date YYYY-MM-DD

runs the pandas reference on the landing folders and compares it with the date's rows in
``<warehouse>/serving.duckdb``; exit code 1 on any difference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

# The contract's segment_assignments columns (section 4) that both sides compute from the
# inputs. customer_key (a keyed hash), rulebook_version and reason are cartera's own.
COMPARED_COLUMNS = [
    "as_of_date", "loan_id", "credit_type", "product_code", "currency", "department_code",
    "balance_pen", "dpd", "dpd_bucket", "max_dpd_12m", "delinquency_episodes_12m", "paid_90d_pen",
    "days_since_last_payment", "sbs_category", "sbs_category_aligned", "provision_rate", "provision_pen",
    "ifrs9_stage", "segment_code", "rule_id", "strategy_code", "channel", "offer", "assignee",
    "next_contact_date",
]


@dataclass
class Comparison:
    left_name: str
    right_name: str
    loans_left: int
    loans_right: int
    only_left: list = field(default_factory=list)
    only_right: list = field(default_factory=list)
    missing_columns: dict = field(default_factory=dict)   # side -> [columns]
    mismatches: dict = field(default_factory=dict)        # column -> count
    examples: list = field(default_factory=list)          # (loan_id, column, left, right)

    @property
    def identical(self) -> bool:
        return not (self.only_left or self.only_right or self.missing_columns or self.mismatches)

    def summary(self) -> str:
        if self.identical:
            return (f"{self.left_name} == {self.right_name}: {self.loans_left} loans x "
                    f"{len(COMPARED_COLUMNS)} columns identical")
        parts = [f"{self.left_name} != {self.right_name} ({self.loans_left} vs {self.loans_right} loans)"]
        if self.missing_columns:
            parts.append(f"missing columns {self.missing_columns}")
        if self.only_left:
            parts.append(f"{len(self.only_left)} loans only in {self.left_name} (e.g. {self.only_left[:3]})")
        if self.only_right:
            parts.append(f"{len(self.only_right)} loans only in {self.right_name} (e.g. {self.only_right[:3]})")
        if self.mismatches:
            parts.append("differing values per column: " + ", ".join(f"{c}={n}" for c, n in self.mismatches.items()))
        for loan_id, column, left, right in self.examples[:10]:
            parts.append(f"  {loan_id}.{column}: {self.left_name}={left!r} {self.right_name}={right!r}")
        return "\n".join(parts)

    def to_json(self) -> dict:
        return {"identical": self.identical, "loans": [self.loans_left, self.loans_right],
                "only_left": self.only_left[:20], "only_right": self.only_right[:20],
                "missing_columns": self.missing_columns, "mismatches": self.mismatches,
                "examples": [list(map(str, e)) for e in self.examples[:20]]}


def _as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def _normalise(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Bring both sides to one type per kind: exact decimals, int64, date32, string."""
    t = column.type
    if pa.types.is_decimal(t):
        return column.cast(pa.decimal128(38, 8))
    if pa.types.is_integer(t):
        return column.cast(pa.int64())
    if pa.types.is_floating(t):  # an integral float (a nullable int read as float) -> int64
        return column.cast(pa.int64())
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return column.cast(pa.date32())
    if pa.types.is_dictionary(t):
        return column.cast(t.value_type).cast(pa.string())
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return column.cast(pa.string())
    return column


def compare(left, right, left_name: str = "reference", right_name: str = "cartera",
            columns: list[str] = COMPARED_COLUMNS) -> Comparison:
    """Join on loan_id and compare every column; both inputs are pandas or Arrow tables."""
    lt, rt = _as_table(left), _as_table(right)
    result = Comparison(left_name, right_name, lt.num_rows, rt.num_rows)
    for name, table in ((left_name, lt), (right_name, rt)):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            result.missing_columns[name] = missing
    columns = [c for c in columns if c in lt.column_names and c in rt.column_names]
    lt = pa.table({c: _normalise(lt[c]) for c in columns}).sort_by("loan_id")
    rt = pa.table({c: _normalise(rt[c]) for c in columns}).sort_by("loan_id")
    left_ids, right_ids = set(lt["loan_id"].to_pylist()), set(rt["loan_id"].to_pylist())
    result.only_left = sorted(left_ids - right_ids)
    result.only_right = sorted(right_ids - left_ids)
    lt = lt.filter(pc.is_in(lt["loan_id"], value_set=pa.array(sorted(right_ids), pa.string())))
    rt = rt.filter(pc.is_in(rt["loan_id"], value_set=pa.array(sorted(left_ids), pa.string())))
    if lt.num_rows != rt.num_rows:  # duplicated loan ids on one side
        result.mismatches["loan_id (duplicates)"] = abs(lt.num_rows - rt.num_rows)
        return result
    ids = lt["loan_id"]
    for col in columns:
        a, b = lt[col], rt[col]
        if a.type != b.type:
            try:
                b = b.cast(a.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                result.mismatches[f"{col} (type {lt[col].type} vs {rt[col].type})"] = lt.num_rows
                continue
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        equal = pc.or_(pc.fill_null(pc.equal(a, b), False), both_null)
        differ = pc.invert(equal)
        count = pc.sum(differ).as_py() or 0
        if count:
            result.mismatches[col] = count
            idx = pc.indices_nonzero(differ).to_pylist()[:5]
            for i in idx:
                result.examples.append((ids[i].as_py(), col, lt[col][i].as_py(), rt[col][i].as_py()))
    return result


def load_published(serving_db: Path, as_of_date) -> pa.Table:
    """One date of ``segment_assignments`` as published in the serving DuckDB file."""
    import duckdb

    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        return con.sql("select * from segment_assignments where as_of_date = ? order by loan_id",
                       params=[dt.date.fromisoformat(str(as_of_date))]).to_arrow_table()
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare cartera's published segment_assignments "
                                                 "with the pandas reference for one date.")
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--warehouse", required=True, type=Path, help="folder holding serving.duckdb")
    parser.add_argument("--date", required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.pandas_reference import compute_segment_assignments

    reference = compute_segment_assignments(args.landing, args.date)
    result = compare(reference, load_published(args.warehouse / "serving.duckdb", args.date))
    print(result.summary())
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
