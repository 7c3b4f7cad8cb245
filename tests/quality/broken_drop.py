"""Test helper: one drop in which every row rule of contract section 1 is broken once.

Used by the rule tests and by the check that GX's narrow and whole-frame batches agree.
Expected quarantine rows are derived from the mutations (line = row index + 2).
"""

from __future__ import annotations

import datetime as dt

from drop_writer import valid_tables


def drop_with_every_rule_broken(day: str):
    """(tables, expected {(file, line, rule, column)}) with one broken rule per mutation."""
    D = dt.date.fromisoformat(day)
    tables = valid_tables(day, customers=12, loans=40, payments=12)
    # customers that no loan references, so breaking them cannot cascade to loans
    extra = [dict(c, customer_id=f"C9{k:03d}") for k, c in enumerate(valid_tables(day, customers=12)["customers"])]
    tables["customers"].extend(extra)
    expected = set()

    def breaks(extract, index, rule, column, **changes):
        tables[extract][index].update(changes)
        expected.add((f"{extract}.csv", index + 2, rule, column))

    # loans: payments point at loans 0, 3, ..., 33, so only other rows are broken
    breaks("loans", 1, "enum:credit_type", "credit_type", credit_type="consumo")
    breaks("loans", 2, "enum:currency", "currency", currency="EUR")
    breaks("loans", 4, "enum:accounting_status", "accounting_status", accounting_status="moroso")
    breaks("loans", 5, "enum:guarantee_type", "guarantee_type", guarantee_type="aval")
    breaks("loans", 7, "range:outstanding_principal", "outstanding_principal", outstanding_principal="-5.00")
    breaks("loans", 8, "range:original_amount", "original_amount", original_amount="-1.00")
    breaks("loans", 10, "range:overdue_amount", "overdue_amount", overdue_amount="-0.01")
    breaks("loans", 11, "range:installment_amount", "installment_amount", installment_amount="-3.00")
    breaks("loans", 13, "range:days_past_due", "days_past_due", days_past_due="10001")
    breaks("loans", 14, "date_order:disbursement_date", "disbursement_date",
           disbursement_date=D + dt.timedelta(days=1))
    loan16 = tables["loans"][16]
    breaks("loans", 16, "date_order:maturity_date", "maturity_date",
           maturity_date=loan16["disbursement_date"] - dt.timedelta(days=1))
    breaks("loans", 17, "not_null:loan_id", "loan_id", loan_id="")
    breaks("loans", 19, "reference:customer_id", "customer_id", customer_id="C9999")
    breaks("loans", 20, "not_null:customer_id", "customer_id", customer_id="")
    breaks("loans", 22, "not_null:product_code", "product_code", product_code="")
    breaks("loans", 23, "type:outstanding_principal", "outstanding_principal", outstanding_principal="12.345")
    breaks("loans", 25, "type:days_past_due", "days_past_due", days_past_due="n/d")
    breaks("loans", 26, "type:next_due_date", "next_due_date", next_due_date="2026-02-30")
    breaks("loans", 28, "not_null:disbursement_date", "disbursement_date", disbursement_date=None)
    duplicate = tables["loans"][29]["loan_id"]
    breaks("loans", 29, "unique:loan_id", "loan_id")
    breaks("loans", 31, "unique:loan_id", "loan_id", loan_id=duplicate)
    breaks("loans", 32, "enum:credit_type", "credit_type", credit_type="x")  # two rules, one row
    breaks("loans", 32, "range:outstanding_principal", "outstanding_principal", outstanding_principal="-1.00")
    breaks("loans", 34, "not_null:branch_code", "branch_code", branch_code="")
    breaks("loans", 35, "not_null:accounting_status", "accounting_status", accounting_status="")

    breaks("payments", 0, "business_date:payment_date", "payment_date", payment_date=D - dt.timedelta(days=1))
    breaks("payments", 1, "range:amount", "amount", amount="0.00")
    breaks("payments", 2, "range:amount", "amount", amount="-5.00")
    breaks("payments", 3, "enum:channel", "channel", channel="ventanilla")
    breaks("payments", 4, "enum:currency", "currency", currency="EUR")
    breaks("payments", 5, "reference:loan_id", "loan_id", loan_id="L99999")
    breaks("payments", 6, "type:is_reversal", "is_reversal", is_reversal="si")
    breaks("payments", 7, "type:amount", "amount", amount="1.005")
    breaks("payments", 8, "unique:payment_id", "payment_id", payment_id="PDUP")
    breaks("payments", 9, "unique:payment_id", "payment_id", payment_id="PDUP")
    breaks("payments", 10, "not_null:payment_id", "payment_id", payment_id="")

    c = 12  # index of the first extra customer: DNI, RUC, CE, PAS, DNI, ...
    breaks("customers", c + 0, "format:document_number:DNI", "document_number", document_number="1234567")
    breaks("customers", c + 1, "format:document_number:RUC", "document_number", document_number="30123456789")
    breaks("customers", c + 2, "format:document_number:CE", "document_number", document_number="12345")
    breaks("customers", c + 3, "format:document_number:PAS", "document_number", document_number="A1")
    breaks("customers", c + 4, "enum:document_type", "document_type", document_type="LE")
    breaks("customers", c + 5, "format:ubigeo", "ubigeo", ubigeo="2601")
    breaks("customers", c + 6, "format:ubigeo", "ubigeo", ubigeo="000101")  # department 00
    breaks("customers", c + 7, "type:digital_contact_consent", "digital_contact_consent",
           digital_contact_consent="si")
    breaks("customers", c + 8, "not_null:full_name", "full_name", full_name="")
    breaks("customers", c + 9, "unique:customer_id", "customer_id", customer_id="C9DUP")
    breaks("customers", c + 10, "unique:customer_id", "customer_id", customer_id="C9DUP")
    breaks("customers", c + 11, "not_null:ubigeo", "ubigeo", ubigeo="")

    tables["fx_rates"] += [
        {"currency": "PEN", "rate_to_pen": "1.000000"},
        {"currency": "eur", "rate_to_pen": "4.05"},
        {"currency": "GBP", "rate_to_pen": "0"},
        {"currency": "JPY", "rate_to_pen": "0.0012345"},
    ]
    expected |= {
        ("fx_rates.csv", 3, "not_pen:currency", "currency"),
        ("fx_rates.csv", 4, "format:currency", "currency"),
        ("fx_rates.csv", 5, "range:rate_to_pen", "rate_to_pen"),
        ("fx_rates.csv", 6, "type:rate_to_pen", "rate_to_pen"),
    }
    return tables, expected
