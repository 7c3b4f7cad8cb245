"""Build the DataFrame GX validates for one extract, straight from DuckDB.

Only the columns the suite reads are fetched (GX copies the frame for row conditions), in
dtypes GX compares vectorised: dates as ``datetime64[ns]``, money and rates as float64,
integers as int64, text as pandas' Arrow-backed strings. The index is the source line.

Rules that need other tables (references, uniqueness across days) are turned into boolean
*derived* columns here, computed by DuckDB joins, and the suite checks those flags. A NULL
key yields ``true``: a missing key is the not-null rule's business, reported once.
"""

from __future__ import annotations

from orchestration.ingest.schema import Extract
from orchestration.quality.suites import frame_columns

# derived column -> SQL over the extract's temp table (``{d}`` is the business date).
# ok_customers / ok_loans hold the keys of D's rows that passed their own rules;
# earlier_loans holds loan_ids landed on an earlier date (see ``prepare_earlier_loans``).
DERIVED_SQL = {
    "customer_id_in_customers": (
        "(customer_id IS NULL OR customer_id IN (SELECT customer_id FROM ok_customers))"
    ),
    "loan_id_in_loans": (
        "(loan_id IS NULL OR loan_id IN (SELECT loan_id FROM ok_loans)"
        " OR loan_id IN (SELECT loan_id FROM earlier_loans))"
    ),
    "payment_id_is_new": (
        "(payment_id IS NULL OR payment_id NOT IN (SELECT payment_id FROM raw.payments"
        " WHERE as_of_date < DATE '{d}' AND payment_id IS NOT NULL))"
    ),
}

# Text columns with few distinct values, handed to GX as pandas categoricals: GX filters
# the batch several times per expectation, and a categorical filters as integer codes
# while an Arrow string column copies every string (10x slower at a million rows).
CATEGORICAL_COLUMNS = {
    "credit_type", "product_code", "currency", "accounting_status", "guarantee_type",
    "branch_code", "channel", "document_type",
}

GX_CASTS = {
    "date": "CAST({c} AS TIMESTAMP_NS)",
    "money": "CAST({c} AS DOUBLE)",
    "rate": "CAST({c} AS DOUBLE)",
    "integer": "CAST({c} AS BIGINT)",
}


def prepare_earlier_loans(con, business_date: str) -> None:
    """Loans landed before D that today's payments name but today's passing loans do not.

    Looking only at those few loan_ids keeps the scan of raw.loans' history off the common
    path (most payments belong to a loan in D's own file).
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE earlier_loans AS "
        "SELECT DISTINCT loan_id FROM t_payments WHERE loan_id IS NOT NULL "
        "AND loan_id NOT IN (SELECT loan_id FROM ok_loans)"
    )
    if con.execute("SELECT count(*) FROM earlier_loans").fetchall()[0][0]:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE earlier_loans AS "
            "SELECT DISTINCT r.loan_id FROM raw.loans r JOIN earlier_loans e USING (loan_id) "
            f"WHERE r.as_of_date < DATE '{business_date}'"
        )


def build_frame(con, extract: Extract, table: str, business_date: str):
    """The pandas DataFrame (index = source line) suite ``extract.name`` validates."""
    selects = []
    for col in frame_columns(extract.name):
        if col in DERIVED_SQL:
            selects.append(f'{DERIVED_SQL[col].format(d=business_date)} AS "{col}"')
        elif col in extract.column_names:
            quoted = f'"{col}"'
            cast = GX_CASTS.get(extract.kind(col), "{c}")
            selects.append(f"{cast.format(c=quoted)} AS {quoted}")
        else:
            raise ValueError(
                f"expectations/{extract.name}.json reads column {col}, which is neither a "
                f"column of {extract.name}.csv nor a derived column ({', '.join(DERIVED_SQL)})"
            )
    sql = f"SELECT _line, {', '.join(selects)} FROM {table}"
    arrow = con.sql(sql).to_arrow_table()
    # one dictionary per column (per-chunk dictionaries make pandas unify them: 10x slower)
    columns = [
        col.combine_chunks().dictionary_encode() if name in CATEGORICAL_COLUMNS else col
        for name, col in zip(arrow.column_names, arrow.columns)
    ]
    frame = type(arrow).from_arrays(columns, names=arrow.column_names).to_pandas()
    return frame.set_index("_line")
