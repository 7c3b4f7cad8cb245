"""bad_row_share: the manifest says exactly which lines break which rule, and nothing else changes."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from sim_contract import (
    CONTROL_COLUMN,
    money_total,
    read_bytes,
    read_control,
    read_rows,
    row_violations,
)

from orchestration.simulate import generate_landing

ARGS = dict(loans=1000, days=5, start=dt.date(2026, 5, 4), seed=21)
SHARE = 0.03
DIALECTS = {
    "default": dict(),
    "legacy": dict(delimiter=";", encoding="latin-1", gzip=True, date_format="dmy"),
}
# kind -> the row-level rule the injected row must break (None: a rule across rows/files)
EXPECTED = {
    "bad_enum": "{column}:enum",
    "negative_amount": "{column}:negative",
    "too_many_decimals": "{column}:decimals",
    "not_a_number": "days_past_due:type",
    "out_of_range": "days_past_due:range",
    "not_a_date": "next_due_date:type",
    "maturity_before_disbursement": "maturity_date:before_disbursement",
    "payment_date_not_d": "payment_date:not_d",
    "bad_document": "document_number:shape",
    "bad_ubigeo": "ubigeo:shape",
    "bad_boolean": "digital_contact_consent:type",
    "duplicated_id": None,
    "unknown_customer": None,
    "unknown_loan": None,
}


@pytest.fixture(scope="module", params=list(DIALECTS))
def pair(request, tmp_path_factory):
    options = DIALECTS[request.param]
    clean = tmp_path_factory.mktemp(f"clean-{request.param}")
    bad = tmp_path_factory.mktemp(f"bad-{request.param}")
    dates = generate_landing(clean, **ARGS, **options)
    assert generate_landing(bad, **ARGS, **options, bad_row_share=SHARE) == dates
    manifest = json.loads((bad / "_generator_manifest.json").read_text(encoding="utf-8"))
    return clean, bad, dates, options, manifest


def lines(path, options):
    return read_bytes(path).decode(options.get("encoding", "utf-8")).splitlines()


def read_dialect(path, options):
    return read_rows(path, options.get("delimiter", ","), options.get("encoding", "utf-8"))[1]


def name(extract, options):
    return f"{extract}.csv.gz" if options.get("gzip") else f"{extract}.csv"


def test_manifest_records_arguments_and_every_kind(pair):
    _, _, dates, _, manifest = pair
    assert manifest["dates"] == [d.isoformat() for d in dates]
    assert manifest["arguments"]["bad_row_share"] == SHARE
    kinds = {(e["file"].split(".")[0], e["kind"]) for e in manifest["bad_rows"] if e["injected"]}
    for extract, expected in {
        "loans": {"bad_enum", "negative_amount", "duplicated_id", "unknown_customer", "maturity_before_disbursement",
                  "too_many_decimals", "not_a_number", "not_a_date", "out_of_range"},
        "payments": {"bad_enum", "negative_amount", "duplicated_id", "unknown_loan", "payment_date_not_d",
                     "too_many_decimals"},
        "customers": {"bad_document", "bad_enum", "duplicated_id", "bad_ubigeo", "bad_boolean"},
    }.items():
        assert {k for e, k in kinds if e == extract} == expected, extract


def test_removing_the_injected_lines_gives_the_clean_files(pair):
    clean, bad, dates, options, manifest = pair
    injected = Counter()
    for day in dates:
        for extract in ("loans", "payments", "customers", "fx_rates"):
            file_name = name(extract, options)
            drop = {e["line"] for e in manifest["bad_rows"]
                    if e["injected"] and e["date"] == day.isoformat() and e["file"] == file_name}
            bad_lines = lines(bad / day.isoformat() / file_name, options)
            kept = [text for number, text in enumerate(bad_lines, start=1) if number not in drop]
            assert kept == lines(clean / day.isoformat() / file_name, options), (day, extract)
            injected[extract] += len(drop)
            total = len(bad_lines) - 1
            if extract != "fx_rates" and total > 200:
                assert 0.3 * SHARE < len(drop) / total < 2.5 * SHARE, (day, extract, len(drop), total)
    assert injected["fx_rates"] == 0 and min(injected["loans"], injected["customers"], injected["payments"]) > 0


def test_each_injected_row_breaks_the_rule_its_kind_names(pair):
    _, bad, dates, options, manifest = pair
    date_format = options.get("date_format", "iso")

    def read(day, extract):
        return read_dialect(bad / day.isoformat() / name(extract, options), options)
    loans_so_far: set[str] = set()
    payments_before: set[str] = set()
    for day in dates:
        rows = {e: read(day, e) for e in ("loans", "payments", "customers")}
        loans_so_far |= {r["loan_id"] for r in rows["loans"]}
        entries = [e for e in manifest["bad_rows"] if e["date"] == day.isoformat()]
        for entry in entries:
            extract = entry["file"].split(".")[0]
            row = rows[extract][entry["line"] - 2]
            assert row[entry["column"]] == entry["value"], entry
            broken = row_violations(extract, row, day, date_format)
            if not entry["injected"]:  # the real row sharing a key with a duplicated_id row
                assert entry["kind"] == "duplicated_id" and not broken
                continue
            rule = EXPECTED[entry["kind"]]
            if rule is not None:
                assert broken == {rule.format(column=entry["column"])}, (entry, broken)
                continue
            assert not broken, (entry, broken)
            if entry["kind"] == "unknown_customer":
                assert row["customer_id"] not in {c["customer_id"] for c in rows["customers"]}
            elif entry["kind"] == "unknown_loan":
                assert row["loan_id"] not in loans_so_far
            else:
                id_col = {"loans": "loan_id", "payments": "payment_id", "customers": "customer_id"}[extract]
                in_file = sum(r[id_col] == row[id_col] for r in rows[extract])
                assert in_file == 2 or (extract == "payments" and row[id_col] in payments_before), entry
        # rows the manifest does not name are clean
        named = {(e["file"], e["line"]) for e in entries}
        for extract, data in rows.items():
            for number, row in enumerate(data, start=2):
                if (name(extract, options), number) not in named:
                    assert not row_violations(extract, row, day, date_format), (day, extract, number)
        payments_before |= {p["payment_id"] for p in rows["payments"]}


def test_duplicate_keys_spare_rows_others_depend_on(pair):
    """A duplicated loan id is never one paid on D, a duplicated customer never one with loans."""
    _, bad, dates, options, manifest = pair
    for entry in manifest["bad_rows"]:
        if entry["injected"] or entry["kind"] != "duplicated_id":
            continue
        folder = bad / entry["date"]
        payments = read_dialect(folder / name("payments", options), options)
        loans = read_dialect(folder / name("loans", options), options)
        if entry["file"].startswith("loans"):
            assert entry["value"] not in {p["loan_id"] for p in payments}
        elif entry["file"].startswith("customers"):
            assert entry["value"] not in {r["customer_id"] for r in loans}


def test_control_totals_are_over_the_rows_as_written(pair):
    _, bad, dates, options, _ = pair
    for day in dates:
        folder = bad / day.isoformat()
        control = read_control(folder)
        for extract in ("loans", "payments", "customers"):
            rows = read_dialect(folder / name(extract, options), options)
            count, total = control[name(extract, options)]
            assert count == len(rows)
            if extract in CONTROL_COLUMN:
                assert total == money_total(r[CONTROL_COLUMN[extract]] for r in rows)
