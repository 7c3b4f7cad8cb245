"""The contract's input rules (contract section 1), restated for the generator's tests.

Deliberately written from the contract text, not from ``orchestration.simulate``: the
tests read the CSVs the generator wrote and judge them with these rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# the landing most tests share (conftest.py generates it once per session)
MAIN = dict(loans=2000, days=25, start=dt.date(2026, 3, 26), seed=11)  # spans Holy Thursday/Friday 2026

COLUMNS = {
    "loans": [
        "loan_id", "customer_id", "credit_type", "product_code", "currency", "disbursement_date",
        "maturity_date", "original_amount", "outstanding_principal", "overdue_amount", "installment_amount",
        "next_due_date", "days_past_due", "accounting_status", "guarantee_type", "branch_code",
    ],
    "payments": ["payment_id", "loan_id", "payment_date", "amount", "currency", "channel", "is_reversal"],
    "customers": [
        "customer_id", "document_type", "document_number", "full_name", "phone", "email", "ubigeo",
        "digital_contact_consent",
    ],
    "fx_rates": ["currency", "rate_to_pen"],
}
CREDIT_TYPES = {
    "corporativo", "gran_empresa", "mediana_empresa", "pequena_empresa", "microempresa",
    "consumo_revolvente", "consumo_no_revolvente", "hipotecario",
}
CURRENCIES = {"PEN", "USD"}
STATUSES = {"vigente", "reprogramado", "refinanciado", "vencido", "judicial", "castigado"}
GUARANTEES = {"ninguna", "preferida", "preferida_muy_rapida_realizacion"}
CHANNELS = {"agencia", "agente", "banca_movil", "banca_internet", "debito_automatico", "transferencia", "recaudadora"}
DOC_SHAPES = {
    "DNI": re.compile(r"\d{8}"),
    "CE": re.compile(r"[0-9A-Za-z]{9,12}"),
    "RUC": re.compile(r"(10|15|17|20)\d{9}"),
    "PAS": re.compile(r".+"),
}
MONEY = re.compile(r"-?\d+(\.\d{1,2})?")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
RATE = re.compile(r"\d+(\.\d{1,6})?")
BOOLEANS = {"true", "false"}
MONEY_COLUMNS = {
    "loans": ("original_amount", "outstanding_principal", "overdue_amount", "installment_amount"),
    "payments": ("amount",),
}
DATE_COLUMNS = {
    "loans": ("disbursement_date", "maturity_date", "next_due_date"),
    "payments": ("payment_date",),
}
CONTROL_COLUMN = {"loans": "outstanding_principal", "payments": "amount"}


def holidays() -> set[dt.date]:
    with open(ROOT / "dbt_project" / "seeds" / "pe_holidays.csv", encoding="utf-8") as fh:
        return {dt.date.fromisoformat(r["holiday_date"]) for r in csv.DictReader(fh)}


def parse_date(text: str, date_format: str = "iso") -> dt.date:
    return dt.datetime.strptime(text, "%Y-%m-%d" if date_format == "iso" else "%d/%m/%Y").date()


def try_date(text: str, date_format: str = "iso"):
    try:
        return parse_date(text, date_format)
    except ValueError:
        return None


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def read_rows(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> tuple[list[str], list[dict]]:
    """Header and rows (text, empty string for empty fields) of one extract file."""
    text = read_bytes(path).decode(encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    return header, [dict(zip(header, r)) for r in reader]


def read_control(folder: Path) -> dict[str, tuple[int, str]]:
    with open(folder / "_control.csv", encoding="utf-8", newline="") as fh:
        return {r["file_name"]: (int(r["row_count"]), r["control_total"]) for r in csv.DictReader(fh)}


def money_total(values) -> str:
    total = sum((Decimal(v) for v in values), Decimal(0))
    return str(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def row_violations(extract: str, row: dict, day: dt.date, date_format: str = "iso") -> set[str]:
    """Rules of contract section 1 that a single row breaks (file-level rules excluded)."""
    bad = set()
    for col in MONEY_COLUMNS.get(extract, ()):
        v = row[col]
        if not NUMBER.fullmatch(v):
            bad.add(f"{col}:type")
        elif not MONEY.fullmatch(v):
            bad.add(f"{col}:decimals")
        elif Decimal(v) < 0 or (extract == "payments" and Decimal(v) <= 0):
            bad.add(f"{col}:negative")
    for col in DATE_COLUMNS.get(extract, ()):
        v = row[col]
        if not (v == "" and col == "next_due_date") and try_date(v, date_format) is None:
            bad.add(f"{col}:type")
    if extract == "loans":
        for col, allowed in (("credit_type", CREDIT_TYPES), ("currency", CURRENCIES),
                             ("accounting_status", STATUSES), ("guarantee_type", GUARANTEES)):
            if row[col] not in allowed:
                bad.add(f"{col}:enum")
        if not re.fullmatch(r"-?\d+", row["days_past_due"]):
            bad.add("days_past_due:type")
        elif not 0 <= int(row["days_past_due"]) <= 10000:
            bad.add("days_past_due:range")
        disb = try_date(row["disbursement_date"], date_format)
        mat = try_date(row["maturity_date"], date_format)
        if disb and disb > day:
            bad.add("disbursement_date:future")
        if disb and mat and mat < disb:
            bad.add("maturity_date:before_disbursement")
        if not row["loan_id"]:
            bad.add("loan_id:null")
    elif extract == "payments":
        if row["currency"] not in CURRENCIES:
            bad.add("currency:enum")
        if row["channel"] not in CHANNELS:
            bad.add("channel:enum")
        if row["is_reversal"] not in BOOLEANS:
            bad.add("is_reversal:type")
        d = try_date(row["payment_date"], date_format)
        if d is not None and d != day:
            bad.add("payment_date:not_d")
        if not row["payment_id"]:
            bad.add("payment_id:null")
    elif extract == "customers":
        shape = DOC_SHAPES.get(row["document_type"])
        if shape is None:
            bad.add("document_type:enum")
        elif not shape.fullmatch(row["document_number"]):
            bad.add("document_number:shape")
        if not re.fullmatch(r"\d{6}", row["ubigeo"]) or not 1 <= int(row["ubigeo"][:2]) <= 25:
            bad.add("ubigeo:shape")
        if row["digital_contact_consent"] not in BOOLEANS:
            bad.add("digital_contact_consent:type")
        if not row["customer_id"]:
            bad.add("customer_id:null")
    return bad


def dpd_bucket(dpd: int) -> str:
    for hi, name in ((0, "0"), (8, "1-8"), (30, "9-30"), (60, "31-60"), (90, "61-90"), (120, "91-120"),
                     (180, "121-180"), (365, "181-365")):
        if dpd <= hi:
            return name
    return ">365"


def decimal_or_none(text: str):
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
