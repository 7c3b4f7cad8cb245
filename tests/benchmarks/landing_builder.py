"""Write small hand-made landing folders (contract section 1) for the benchmark tests.

Rows are given as dicts with only the columns a test cares about; the rest get harmless
defaults. ``_control.csv`` is computed from what is written, last, like a real core would.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from decimal import Decimal
from pathlib import Path

COLUMNS = {
    "loans": ["loan_id", "customer_id", "credit_type", "product_code", "currency", "disbursement_date",
              "maturity_date", "original_amount", "outstanding_principal", "overdue_amount",
              "installment_amount", "next_due_date", "days_past_due", "accounting_status",
              "guarantee_type", "branch_code"],
    "payments": ["payment_id", "loan_id", "payment_date", "amount", "currency", "channel", "is_reversal"],
    "customers": ["customer_id", "document_type", "document_number", "full_name", "phone", "email",
                  "ubigeo", "digital_contact_consent"],
    "fx_rates": ["currency", "rate_to_pen"],
}
DATE_COLUMNS = {"disbursement_date", "maturity_date", "next_due_date", "payment_date"}


def loan(loan_id, customer_id, dpd=0, principal="1000.00", credit_type="consumo_no_revolvente",
         currency="PEN", status="vigente", guarantee="ninguna", **extra):
    row = dict(loan_id=loan_id, customer_id=customer_id, credit_type=credit_type, product_code="PERSONAL",
               currency=currency, disbursement_date="2024-06-01", maturity_date="2028-06-01",
               original_amount="50000.00", outstanding_principal=principal, overdue_amount="0.00",
               installment_amount="100.00", next_due_date="", days_past_due=str(dpd),
               accounting_status=status, guarantee_type=guarantee, branch_code="B01")
    row.update(extra)
    return row


def customer(customer_id, ubigeo="150101", consent=True, **extra):
    row = dict(customer_id=customer_id, document_type="DNI", document_number="12345678",
               full_name="Peña Núñez, María José", phone="999888777", email="", ubigeo=ubigeo,
               digital_contact_consent="true" if consent else "false")
    row.update(extra)
    return row


def payment(payment_id, loan_id, day: dt.date, amount, currency="PEN", reversal=False, channel="agencia"):
    return dict(payment_id=payment_id, loan_id=loan_id, payment_date=day.isoformat(), amount=amount,
                currency=currency, channel=channel, is_reversal="true" if reversal else "false")


def write_drop(landing: Path, day: dt.date, loans, customers, payments=(), usd_rate="3.750000",
               delimiter=",", encoding="utf-8", gzipped=False, dmy_dates=False) -> Path:
    """One landing folder for ``day``; returns it. ``usd_rate=None`` writes no USD rate."""
    folder = landing / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"loans": loans, "payments": list(payments), "customers": customers,
              "fx_rates": [] if usd_rate is None else [dict(currency="USD", rate_to_pen=usd_rate)]}
    control = []
    for extract, rows in tables.items():
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS[extract], delimiter=delimiter, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            out = {c: row.get(c, "") for c in COLUMNS[extract]}
            if dmy_dates:
                for c in DATE_COLUMNS & out.keys():
                    if out[c] and "-" in out[c]:
                        out[c] = dt.date.fromisoformat(out[c]).strftime("%d/%m/%Y")
            writer.writerow(out)
        data = buf.getvalue().encode(encoding)
        name = f"{extract}.csv.gz" if gzipped else f"{extract}.csv"
        (folder / name).write_bytes(gzip.compress(data) if gzipped else data)
        column = {"loans": "outstanding_principal", "payments": "amount"}.get(extract)
        total = f"{sum((Decimal(r[column]) for r in rows), Decimal('0.00')):.2f}" if column else ""
        control.append(dict(file_name=name, row_count=len(rows), control_total=total))
    with open(folder / "_control.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file_name", "row_count", "control_total"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(control)
    return folder
