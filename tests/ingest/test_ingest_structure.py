"""Structural checks: each failure rejects the whole drop with one line naming what is wrong.

Every test writes a real landing folder, materializes the real multi-asset through Dagster
and then reads the real warehouse: the run failed with the exact message, raw.drops holds
'rejected' with the same message, and raw.* holds nothing for that date.
"""

from __future__ import annotations

import gzip

from drop_writer import COLUMNS, control_total, valid_tables, write_drop
from ingest_harness import checks, count, failure_description, query, resource, run

DAY = "2026-01-05"
RAW_TABLES = ("raw.loans", "raw.payments", "raw.customers", "raw.fx_rates")


def assert_rejected(cartera, result, message: str) -> None:
    """The run failed with ``message``, logged as rejected, and nothing of DAY landed."""
    assert not result.success
    assert failure_description(result) == f"{DAY}: drop rejected: {message}"
    assert "\n" not in message
    drops = query(cartera, "SELECT status, message FROM raw.drops WHERE as_of_date = ?", [DAY])
    assert drops == [("rejected", message)]
    for table in RAW_TABLES:
        assert count(cartera, table, DAY) == 0, table
    assert count(cartera, "raw.ingest_files", DAY) == 0
    page = (cartera.warehouse_path / "quality" / f"quality_{DAY}.html").read_text(encoding="utf-8")
    assert "RECHAZADO" in page


def test_missing_control_file_means_incomplete_drop(tmp_path):
    cartera = resource(tmp_path)
    write_drop(cartera.landing_path, DAY, valid_tables(DAY), control=False)
    result = run(cartera, DAY)
    folder = cartera.landing_path / DAY
    assert_rejected(
        cartera, result,
        f"{DAY}: drop incomplete: _control.csv not found in {folder} "
        "(it is written last, after every extract file)",
    )


def test_missing_required_column_names_file_and_column(tmp_path):
    cartera = resource(tmp_path)
    header = [c for c in COLUMNS["loans"] if c != "outstanding_principal"]
    write_drop(cartera.landing_path, DAY, valid_tables(DAY), columns={"loans": header})
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        "loans.csv: required column outstanding_principal is missing from the header "
        f"(line 1: {','.join(header)})",
    )
    evaluations = checks(result)
    assert evaluations["loans_structure"].passed is False
    assert evaluations["loans_structure"].metadata["error"].value.startswith("loans.csv: required")
    assert evaluations["customers_structure"].passed is True
    assert "loans_rules" not in evaluations  # rules never ran on a rejected structure


def test_control_total_mismatch(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    read_total = control_total(tables["loans"], "outstanding_principal")
    write_drop(cartera.landing_path, DAY, tables,
               control_overrides={"loans": {"control_total": "123.45"}})
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        f"loans.csv: control_total 123.45 expected by _control.csv, read {read_total} "
        "(sum of outstanding_principal)",
    )


def test_row_count_mismatch(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    write_drop(cartera.landing_path, DAY, tables, control_overrides={"payments": {"row_count": 99}})
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        f"payments.csv: row_count 99 expected by _control.csv, read {len(tables['payments'])}",
    )


def test_missing_fx_rate_names_currency_and_first_line_using_it(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    tables["fx_rates"] = [{"currency": "EUR", "rate_to_pen": "4.1"}]
    first_usd = next(i for i, r in enumerate(tables["loans"]) if r["currency"] == "USD") + 2
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        f"fx_rates.csv has no rate for USD, used by loans.csv line {first_usd}; "
        "a rate is never assumed",
    )
    assert checks(result)["fx_rates_structure"].passed is False


def test_a_quarantined_rate_is_no_rate(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=1.0)  # only the fx check may stop it
    tables = valid_tables(DAY)
    tables["fx_rates"] = [{"currency": "USD", "rate_to_pen": "-3.7"}]
    first_usd = next(i for i, r in enumerate(tables["loans"]) if r["currency"] == "USD") + 2
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        "fx_rates.csv has no rate for USD (its row on line 2 broke range:rate_to_pen), "
        f"used by loans.csv line {first_usd}; a rate is never assumed",
    )


def test_missing_required_file(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY))
    (folder / "customers.csv").unlink()
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        f"customers.csv: required file missing from {folder} "
        "(expected customers.csv or customers.csv.gz)",
    )


def test_file_not_listed_in_control(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY))
    lines = (folder / "_control.csv").read_text().splitlines()
    (folder / "_control.csv").write_text("\n".join(l for l in lines if not l.startswith("fx_rates")) + "\n")
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        "_control.csv: no row for fx_rates.csv (it lists customers.csv, loans.csv, payments.csv); "
        "expected one row per extract file, named as on disk",
    )


def test_corrupt_gzip_names_the_file(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY, loans=400), gzip=True)
    data = (folder / "loans.csv.gz").read_bytes()
    (folder / "loans.csv.gz").write_bytes(data[: len(data) // 2])
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        "loans.csv.gz: cannot be read: the gzip stream is truncated (file incomplete or corrupt)",
    )


def test_not_gzip_at_all(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY), gzip=True)
    (folder / "payments.csv.gz").write_bytes(b"this is not gzip\n")
    result = run(cartera, DAY)
    message = failure_description(result)
    assert message.startswith(f"{DAY}: drop rejected: payments.csv.gz: cannot be read: not a valid gzip file")
    assert count(cartera, "raw.loans", DAY) == 0


def test_a_binary_file_is_rejected_naming_the_file_and_its_header_line(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY))
    (folder / "payments.csv").write_bytes(b"\x8f\x01payment_id\rgarbage\x00\xfe,\x13\n\x07\x07\n")
    result = run(cartera, DAY)
    assert_rejected(
        cartera, result,
        "payments.csv: line 1 is not a CSV header (new-line character seen in unquoted field - "
        "do you need to open the file in universal-newline mode?); expected " + ",".join(COLUMNS["payments"]),
    )


def test_unparseable_line_names_file_and_line(tmp_path):
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY))
    lines = (folder / "loans.csv").read_text(encoding="utf-8").splitlines()
    lines[6] += ",EXTRA"  # line 7 of the file gets a 17th field
    (folder / "loans.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(cartera, DAY)
    assert_rejected(cartera, result, "loans.csv: cannot be read at line 7: 17 fields, expected 16 as in the header")


def test_rejected_drop_leaves_the_landed_version_untouched(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    write_drop(cartera.landing_path, DAY, tables)
    assert run(cartera, DAY).success
    before = query(cartera, "SELECT * FROM raw.loans ORDER BY loan_id")
    assert len(before) == len(tables["loans"])

    write_drop(cartera.landing_path, DAY, tables, control_overrides={"loans": {"row_count": 1}})
    result = run(cartera, DAY)
    assert not result.success
    assert query(cartera, "SELECT * FROM raw.loans ORDER BY loan_id") == before
    statuses = query(cartera, "SELECT status FROM raw.drops ORDER BY ingested_at")
    assert [s for (s,) in statuses] == ["landed", "rejected"]


def test_gzip_control_names_the_file_as_on_disk(tmp_path):
    """_control.csv lists ``loans.csv.gz``; a drop whose control says ``loans.csv`` is refused."""
    cartera = resource(tmp_path)
    folder = write_drop(cartera.landing_path, DAY, valid_tables(DAY), gzip=True)
    text = (folder / "_control.csv").read_text().replace("loans.csv.gz", "loans.csv")
    (folder / "_control.csv").write_text(text)
    result = run(cartera, DAY)
    assert not result.success
    assert "_control.csv: no row for loans.csv.gz" in failure_description(result)
    assert gzip.decompress((folder / "loans.csv.gz").read_bytes()).startswith(b"loan_id,")
