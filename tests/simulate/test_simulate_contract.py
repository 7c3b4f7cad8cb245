"""The generated drops follow contract section 1 (read back from the CSVs, not from the generator)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from sim_contract import (
    COLUMNS,
    CONTROL_COLUMN,
    MAIN,
    RATE,
    holidays,
    money_total,
    row_violations,
)


def test_folders_are_the_business_dates_returned(landing):
    on_disk = sorted(p.name for p in landing.root.iterdir() if p.is_dir())
    assert on_disk == [d.isoformat() for d in landing.dates]
    assert len(landing.dates) == MAIN["days"]
    # every Monday-Friday that is not a national holiday between start and the last date, in order
    hol = holidays()
    expected, day = [], MAIN["start"]
    while len(expected) < MAIN["days"]:
        if day.weekday() < 5 and day not in hol:
            expected.append(day)
        day += dt.timedelta(days=1)
    assert landing.dates == expected
    assert dt.date(2026, 4, 2) not in landing.dates and dt.date(2026, 4, 3) not in landing.dates  # Holy Thu/Fri


def test_each_folder_holds_the_five_files_control_last(landing):
    for drop in landing.drops:
        names = {p.name for p in drop.folder.iterdir()}
        assert names == {"loans.csv", "payments.csv", "customers.csv", "fx_rates.csv", "_control.csv"}
        control_mtime = (drop.folder / "_control.csv").stat().st_mtime_ns
        assert all((drop.folder / n).stat().st_mtime_ns <= control_mtime for n in names)
    assert (landing.root / "_generator_manifest.json").is_file()


def test_headers_are_exactly_the_contract_columns(landing):
    for drop in landing.drops:
        for extract, cols in COLUMNS.items():
            assert drop.headers[extract] == cols, (drop.day, extract)


def test_every_row_follows_the_row_rules(landing):
    for drop in landing.drops:
        for extract, rows in (("loans", drop.loan_rows), ("payments", drop.payments), ("customers", drop.customer_rows)):
            for line, row in enumerate(rows, start=2):
                assert not row_violations(extract, row, drop.day), (drop.day, extract, line, row)


def test_control_file_matches_what_was_written(landing):
    for drop in landing.drops:
        rows = {"loans": drop.loan_rows, "payments": drop.payments, "customers": drop.customer_rows, "fx_rates": drop.fx}
        assert list(drop.control) == ["loans.csv", "payments.csv", "customers.csv", "fx_rates.csv"]
        for extract, data in rows.items():
            count, total = drop.control[f"{extract}.csv"]
            assert count == len(data)
            if extract in CONTROL_COLUMN:
                assert total == money_total(r[CONTROL_COLUMN[extract]] for r in data)
                assert re.fullmatch(r"-?\d+\.\d\d", total)
            else:
                assert total == ""


def test_keys_are_unique_and_payment_ids_unique_across_days(landing):
    seen_payments = Counter()
    for drop in landing.drops:
        assert len(drop.loans) == len(drop.loan_rows)
        assert len(drop.customers) == len(drop.customer_rows)
        seen_payments.update(p["payment_id"] for p in drop.payments)
    assert seen_payments and max(seen_payments.values()) == 1


def test_referential_integrity(landing):
    seen_loans: dict[str, dict] = {}
    for drop in landing.drops:
        for loan in drop.loan_rows:
            assert loan["customer_id"] in drop.customers, (drop.day, loan["loan_id"])
        seen_loans.update(drop.loans)
        for p in drop.payments:
            assert p["loan_id"] in seen_loans, (drop.day, p)  # D's snapshot or an earlier one
            assert p["currency"] == seen_loans[p["loan_id"]]["currency"]  # a USD loan pays in USD


def test_payments_are_dated_d_and_reversals_cancel_earlier_payments(landing):
    earlier: Counter = Counter()
    reversals = total = 0
    for drop in landing.drops:
        for p in drop.payments:
            assert p["payment_date"] == drop.day.isoformat()
            total += 1
            if p["is_reversal"] == "true":
                reversals += 1
                key = (p["loan_id"], p["amount"])
                assert earlier[key] > 0, f"reversal {p['payment_id']} has no earlier payment of {key}"
                earlier[key] -= 1
        for p in drop.payments:
            if p["is_reversal"] == "false":
                earlier[(p["loan_id"], p["amount"])] += 1
    assert 0.01 < reversals / total < 0.06  # "a few percent"


def test_fx_rates_one_usd_rate_per_date_moving_a_little(landing):
    rates = []
    for drop in landing.drops:
        assert [r["currency"] for r in drop.fx] == ["USD"]
        text = drop.fx[0]["rate_to_pen"]
        assert RATE.fullmatch(text)
        rates.append(float(text))
    assert all(3.55 <= r <= 3.95 for r in rates)
    assert len(set(rates)) > 1
    assert max(abs(a - b) for a, b in zip(rates, rates[1:])) < 0.05


def test_customers_snapshot_is_full_and_documents_look_peruvian(landing):
    previous: set[str] = set()
    for drop in landing.drops:
        ids = set(drop.customers)
        assert previous <= ids  # a full snapshot never forgets a customer
        previous = ids
    rows = landing.drops[-1].customer_rows
    kinds = Counter(r["document_type"] for r in rows)
    assert kinds["DNI"] > 0.5 * len(rows) and kinds["RUC"] > 0 and kinds["CE"] > 0 and kinds["PAS"] > 0
    assert {r["document_number"][:2] for r in rows if r["document_type"] == "RUC"} >= {"10", "20"}
    assert len({r["document_number"] for r in rows if r["document_type"] == "DNI"}) == kinds["DNI"]
    assert all(re.fullmatch(r"9\d{8}", r["phone"]) for r in rows if r["phone"])
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.[a-z]{2,}", r["email"]) for r in rows if r["email"])
    assert 0.55 <= sum(r["digital_contact_consent"] == "true" for r in rows) / len(rows) <= 0.75
    names = " ".join(r["full_name"] for r in rows)
    for ch in "ñÑáéíóú":
        assert ch in names, ch


def test_customers_live_in_all_25_departments_lima_and_callao_first(landing):
    depts = Counter(r["ubigeo"][:2] for r in landing.drops[-1].customer_rows)
    assert set(depts) == {f"{i:02d}" for i in range(1, 26)}
    top = [d for d, _ in depts.most_common(5)]
    assert top[0] == "15" and "07" in top
    assert 0.3 < depts["15"] / sum(depts.values()) < 0.55
