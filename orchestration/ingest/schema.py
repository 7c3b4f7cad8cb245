"""The four extracts of a landing folder (contract section 1), as data.

Only the *shape* lives here: which columns each file must have, how each column is typed
when it lands in ``raw.*`` and which column feeds the control total. The row *rules*
(not-null, enums, ranges, formats, references) live in the analyst-readable Great
Expectations suites under ``expectations/``, so there is one place to read them.

Column kinds and what a cell must look like to be typed (anything else is quarantined with
rule ``type:<column>``; an empty cell is NULL and left to the suite's not-null rules):

========  ===================================================  =================
kind      accepted text                                        raw.* type
========  ===================================================  =================
text      anything                                             VARCHAR
date      ``YYYY-MM-DD`` or ``DD/MM/YYYY`` (one per column)    DATE
money     ``-?digits[.d[d]]`` (at most 2 decimals)             DECIMAL(18,2)
rate      ``-?digits[.dddddd]`` (at most 6 decimals)           DECIMAL(18,6)
integer   ``-?digits``                                         INTEGER
boolean   true/false, 1/0 (any case)                           BOOLEAN
========  ===================================================  =================
"""

from __future__ import annotations

from dataclasses import dataclass

CONTROL_FILE = "_control.csv"
CONTROL_COLUMNS = ("file_name", "row_count", "control_total")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"


@dataclass(frozen=True)
class Extract:
    name: str  # loans, payments, ... (also the raw table and the suite name)
    columns: tuple[Column, ...]
    control_total_column: str | None = None  # summed into _control.csv's control_total

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def kind(self, column: str) -> str:
        return next(c.kind for c in self.columns if c.name == column)

    @property
    def table(self) -> str:
        return f"raw.{self.name}"


def _cols(spec: str) -> tuple[Column, ...]:
    """``"loan_id, amount:money"`` -> Columns (kind defaults to text)."""
    out = []
    for item in spec.split(","):
        name, _, kind = item.strip().partition(":")
        out.append(Column(name, kind or "text"))
    return tuple(out)


LOANS = Extract(
    "loans",
    _cols(
        "loan_id, customer_id, credit_type, product_code, currency, disbursement_date:date,"
        " maturity_date:date, original_amount:money, outstanding_principal:money,"
        " overdue_amount:money, installment_amount:money, next_due_date:date,"
        " days_past_due:integer, accounting_status, guarantee_type, branch_code"
    ),
    control_total_column="outstanding_principal",
)
PAYMENTS = Extract(
    "payments",
    _cols(
        "payment_id, loan_id, payment_date:date, amount:money, currency, channel,"
        " is_reversal:boolean"
    ),
    control_total_column="amount",
)
CUSTOMERS = Extract(
    "customers",
    _cols(
        "customer_id, document_type, document_number, full_name, phone, email, ubigeo,"
        " digital_contact_consent:boolean"
    ),
)
FX_RATES = Extract("fx_rates", _cols("currency, rate_to_pen:rate"))

# Validation order matters: references point to rows of earlier extracts that passed
# (loan -> customer of D; payment -> loan of D or earlier), and the fx coverage check
# needs the currencies of the loans and payments that passed.
EXTRACTS: tuple[Extract, ...] = (FX_RATES, CUSTOMERS, LOANS, PAYMENTS)
EXTRACTS_BY_NAME = {e.name: e for e in EXTRACTS}
# The order a reader expects them in (contract table order): used in messages and reports.
DISPLAY_ORDER = ("loans", "payments", "customers", "fx_rates")

SQL_TYPES = {
    "text": "VARCHAR",
    "date": "DATE",
    "money": "DECIMAL(18,2)",
    "rate": "DECIMAL(18,6)",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
}


def raw_table_ddl(extract: Extract) -> str:
    cols = ", ".join(f"{c.name} {SQL_TYPES[c.kind]}" for c in extract.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {extract.table} "
        f"(as_of_date DATE NOT NULL, {cols}, source_line INTEGER NOT NULL)"
    )


BOOKKEEPING_DDL = (
    "CREATE TABLE IF NOT EXISTS raw.quarantine (as_of_date DATE NOT NULL, run_id VARCHAR,"
    " file_name VARCHAR, line_number INTEGER, rule VARCHAR, column_name VARCHAR,"
    " raw_values VARCHAR)",
    "CREATE TABLE IF NOT EXISTS raw.ingest_files (as_of_date DATE NOT NULL, run_id VARCHAR,"
    " file_name VARCHAR, sha256 VARCHAR, rows_read BIGINT, rows_quarantined BIGINT,"
    " rows_landed BIGINT, ingested_at TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS raw.drops (as_of_date DATE NOT NULL, run_id VARCHAR,"
    " status VARCHAR, message VARCHAR, ingested_at TIMESTAMP)",
)


def ensure_raw_schema(con) -> None:
    """Create schema ``raw`` and its tables if missing (idempotent, cheap)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for extract in EXTRACTS:
        con.execute(raw_table_ddl(extract))
    for ddl in BOOKKEEPING_DDL:
        con.execute(ddl)
