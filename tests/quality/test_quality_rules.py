"""Row rules: every rule of contract section 1 sends exactly the rows that break it to
raw.quarantine (file, line, rule, column, raw values) and lands the rest.

The expected quarantine is derived from the mutations written into the files (line = row
index + 2), not from the code under test.
"""

from __future__ import annotations

import json
from collections import Counter

from broken_drop import drop_with_every_rule_broken
from drop_writer import valid_tables, write_drop
from ingest_harness import checks, count, query, resource, run

DAY = "2026-01-05"


def test_every_rule_quarantines_exactly_the_rows_that_break_it(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=1.0)  # land everything that passes
    tables, expected = drop_with_every_rule_broken(DAY)
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert result.success

    got = set(query(cartera, "SELECT file_name, line_number, rule, column_name FROM raw.quarantine"))
    assert got == expected

    for name, rows in tables.items():
        bad_lines = {line for f, line, _, _ in expected if f == f"{name}.csv"}
        files = query(cartera, "SELECT rows_read, rows_quarantined, rows_landed FROM raw.ingest_files "
                               "WHERE file_name = ?", [f"{name}.csv"])
        # one row per rule in quarantine, one count per row in the file's figures
        assert files == [(len(rows), len(bad_lines), len(rows) - len(bad_lines))], name
        assert count(cartera, f"raw.{name}", DAY) == len(rows) - len(bad_lines)
        landed_lines = {line for (line,) in query(cartera, f"SELECT source_line FROM raw.{name}")}
        assert not landed_lines & bad_lines
        assert landed_lines | bad_lines == set(range(2, len(rows) + 2))

    raw = json.loads(query(cartera, "SELECT raw_values FROM raw.quarantine WHERE file_name = 'loans.csv' "
                                    "AND line_number = 3")[0][0])
    assert raw["credit_type"] == "consumo" and raw["loan_id"] == tables["loans"][1]["loan_id"]
    assert set(raw) == set(tables["loans"][1])

    evaluation = checks(result)["loans_rules"]
    assert evaluation.passed  # under the (raised) threshold
    expected_counts = Counter(rule for f, _, rule, _ in expected if f == "loans.csv")
    assert evaluation.metadata["rules_failing"].value == dict(expected_counts)
    assert evaluation.metadata["failing_count"].value == len({l for f, l, _, _ in expected if f == "loans.csv"})

    page = (cartera.warehouse_path / "quality" / f"quality_{DAY}.html").read_text(encoding="utf-8")
    for _, _, rule, _ in expected:
        assert f"<code>{rule}</code>" in page
    assert "http" not in page.lower()  # self-contained: no links, no CDN


def test_bad_enum_is_quarantined_and_reported(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["loans"][4]["credit_type"] = "bogus"  # a loan without payments (see valid_tables)
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert result.success
    rows = query(cartera, "SELECT file_name, line_number, rule, column_name FROM raw.quarantine")
    assert rows == [("loans.csv", 6, "enum:credit_type", "credit_type")]
    assert count(cartera, "raw.loans", DAY) == len(tables["loans"]) - 1
    meta = checks(result)["loans_rules"].metadata
    assert meta["rule"].value == "enum:credit_type"
    assert meta["failing_count"].value == 1
    assert meta["sample"].value == [{"date": DAY, "rule": "enum:credit_type", "line": 6, "credit_type": "bogus"}]


def test_duplicated_id_quarantines_both_rows(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["customers"][6]["customer_id"] = tables["customers"][2]["customer_id"]  # C0003 twice
    write_drop(cartera.landing_path, DAY, tables)
    assert run(cartera, DAY).success
    customers = query(cartera, "SELECT line_number, rule FROM raw.quarantine WHERE file_name = 'customers.csv'")
    assert sorted(customers) == [(4, "unique:customer_id"), (8, "unique:customer_id")]
    assert query(cartera, "SELECT count(*) FROM raw.customers WHERE customer_id = 'C0003'") == [(0,)]
    # neither copy can be trusted, so the loans of C0003 and C0007 have no customer either
    orphans = {r["loan_id"] for r in tables["loans"] if r["customer_id"] in ("C0003", "C0007")}
    loans = query(cartera, "SELECT json_extract_string(raw_values, '$.loan_id'), rule FROM raw.quarantine "
                           "WHERE file_name = 'loans.csv'")
    assert {(loan, "reference:customer_id") for loan in orphans} == set(loans)


def test_orphan_payment_is_quarantined(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["payments"][1]["loan_id"] = "L99999"
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert result.success
    assert query(cartera, "SELECT file_name, line_number, rule, column_name FROM raw.quarantine") == [
        ("payments.csv", 3, "reference:loan_id", "loan_id")
    ]
    assert query(cartera, "SELECT count(*) FROM raw.payments WHERE loan_id = 'L99999'") == [(0,)]
    assert checks(result)["payments_rules"].metadata["sample"].value == [
        {"date": DAY, "rule": "reference:loan_id", "line": 3, "loan_id": "L99999"}
    ]


def test_orphan_loan_is_quarantined(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["loans"][7]["customer_id"] = "C4242"
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert result.success
    assert query(cartera, "SELECT file_name, line_number, rule, column_name FROM raw.quarantine") == [
        ("loans.csv", 9, "reference:customer_id", "customer_id")
    ]
    landed = {c for (c,) in query(cartera, "SELECT DISTINCT customer_id FROM raw.loans")}
    assert landed <= {c["customer_id"] for c in tables["customers"]}
