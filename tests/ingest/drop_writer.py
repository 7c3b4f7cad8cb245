"""Test helper: write a landing folder from a few Python rows, in any allowed dialect.

``valid_tables(day)`` builds a small, internally consistent drop (customers with ñ and
accents, PEN and USD loans, payments of those loans, a USD rate); tests mutate rows to
break exactly one thing and ``write_drop`` writes it with a matching ``_control.csv``
(computed here independently of the code under test) unless told otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip as gzip_lib
import io
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

COLUMNS = {
    "loans": [
        "loan_id", "customer_id", "credit_type", "product_code", "currency",
        "disbursement_date", "maturity_date", "original_amount", "outstanding_principal",
        "overdue_amount", "installment_amount", "next_due_date", "days_past_due",
        "accounting_status", "guarantee_type", "branch_code",
    ],
    "payments": ["payment_id", "loan_id", "payment_date", "amount", "currency", "channel", "is_reversal"],
    "customers": [
        "customer_id", "document_type", "document_number", "full_name", "phone", "email",
        "ubigeo", "digital_contact_consent",
    ],
    "fx_rates": ["currency", "rate_to_pen"],
}
CONTROL_COLUMN = {"loans": "outstanding_principal", "payments": "amount"}

NAMES = [
    "José Núñez Peña", "María Ñahui Quispe", "Inversiones Muñoz, S.A.C.", 'Panadería "La Ñusta"',
    "Sofía Güemes Ríos", "Raúl Castañeda", "Lucía Ordóñez", "Martín Cañete",
]
CREDIT_TYPES = [
    "consumo_revolvente", "microempresa", "hipotecario", "consumo_no_revolvente",
    "pequena_empresa", "mediana_empresa", "corporativo", "gran_empresa",
]
STATUSES = ["vigente", "vencido", "reprogramado", "refinanciado", "judicial", "castigado"]
GUARANTEES = ["ninguna", "preferida", "preferida_muy_rapida_realizacion"]
CHANNELS = ["agencia", "agente", "banca_movil", "banca_internet", "debito_automatico"]


def _doc(i: int) -> tuple[str, str]:
    kind = ("DNI", "RUC", "CE", "PAS")[i % 4]
    number = {
        "DNI": f"{40000000 + i:08d}",
        "RUC": f"20{100000000 + i:09d}",
        "CE": f"00{1000000 + i:07d}",
        "PAS": f"A{10000000 + i:08d}",
    }[kind]
    return kind, number


def valid_tables(day: str, customers: int = 8, loans: int = 20, payments: int = 6) -> dict:
    """A consistent drop for ``day`` as {extract: [row dict]} (dates as datetime.date)."""
    d = dt.date.fromisoformat(day)
    cust_rows = []
    for i in range(customers):
        kind, number = _doc(i)
        cust_rows.append({
            "customer_id": f"C{i + 1:04d}",
            "document_type": kind,
            "document_number": number,
            "full_name": NAMES[i % len(NAMES)],
            "phone": f"9{i + 10000000:08d}" if i % 3 else "",
            "email": f"cliente{i + 1}@correo.pe" if i % 2 else "",
            "ubigeo": ("150101", "070101", "040101", "130101", "250101")[i % 5],
            "digital_contact_consent": "true" if i % 2 else "false",
        })
    loan_rows = []
    for i in range(loans):
        usd = i % 5 == 4
        loan_rows.append({
            "loan_id": f"L{i + 1:05d}",
            "customer_id": cust_rows[i % customers]["customer_id"],
            "credit_type": CREDIT_TYPES[i % len(CREDIT_TYPES)],
            "product_code": ("TARJETA", "PERSONAL", "MYPE_CAPITAL", "HIPOTECARIO")[i % 4],
            "currency": "USD" if usd else "PEN",
            "disbursement_date": d - dt.timedelta(days=400 + i),
            "maturity_date": d + dt.timedelta(days=300 + i),
            "original_amount": f"{10000 + 250 * i}.00",
            "outstanding_principal": f"{5000 + 137 * i}.{i % 100:02d}",
            "overdue_amount": f"{(i % 4) * 120}.50",
            "installment_amount": f"{300 + i}.25",
            "next_due_date": (d + dt.timedelta(days=10)) if i % 6 else None,
            "days_past_due": str((0, 5, 35, 95, 200, 0)[i % 6]),
            "accounting_status": STATUSES[i % len(STATUSES)],
            "guarantee_type": GUARANTEES[i % len(GUARANTEES)],
            "branch_code": f"AG{i % 7:03d}",
        })
    pay_rows = []
    for i in range(payments):
        loan = loan_rows[(i * 3) % loans]
        pay_rows.append({
            "payment_id": f"P{day.replace('-', '')}{i + 1:04d}",
            "loan_id": loan["loan_id"],
            "payment_date": d,
            "amount": f"{150 + 10 * i}.75",
            "currency": loan["currency"],
            "channel": CHANNELS[i % len(CHANNELS)],
            "is_reversal": "true" if i == payments - 1 else "false",
        })
    fx_rows = [{"currency": "USD", "rate_to_pen": "3.712345"}]
    return {"loans": loan_rows, "payments": pay_rows, "customers": cust_rows, "fx_rates": fx_rows}


def _text(value, date_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d" if date_format == "iso" else "%d/%m/%Y")
    return str(value)


def control_total(rows: list[dict], column: str) -> str:
    total = Decimal(0)
    for row in rows:
        try:
            total += Decimal(str(row.get(column) or ""))
        except InvalidOperation:
            pass
    return str(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def write_drop(
    landing: Path,
    day: str,
    tables: dict,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    gzip: bool = False,
    date_format: str = "iso",
    newline: str = "\n",
    columns: dict | None = None,
    control: bool = True,
    control_overrides: dict | None = None,
) -> Path:
    """Write the four files (then ``_control.csv`` unless ``control=False``); returns the folder.

    ``columns`` overrides a file's header (to drop a column or add an extra one);
    ``control_overrides`` = {extract: {"row_count"|"control_total": value}}.
    """
    folder = Path(landing) / day
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file_name,row_count,control_total"]
    for extract, rows in tables.items():
        header = (columns or {}).get(extract, COLUMNS[extract])
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_text(row.get(c), date_format) for c in header])
        data = buffer.getvalue().encode(encoding)
        name = f"{extract}.csv.gz" if gzip else f"{extract}.csv"
        if gzip:
            data = gzip_lib.compress(data, mtime=0)
        (folder / name).write_bytes(data)
        count = str(len(rows))
        total = control_total(rows, CONTROL_COLUMN[extract]) if extract in CONTROL_COLUMN else ""
        override = (control_overrides or {}).get(extract, {})
        count = str(override.get("row_count", count))
        total = str(override.get("control_total", total))
        lines.append(f"{name},{count},{total}")
    if control:
        (folder / "_control.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
