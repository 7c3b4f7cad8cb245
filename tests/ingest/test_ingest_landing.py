"""Landing: valid drops land typed rows, re-runs replace, ranges go in date order, every
dialect the contract allows lands the very same rows."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from drop_writer import COLUMNS, valid_tables, write_drop
from ingest_harness import checks, count, failure_description, log_messages, materializations, query, resource, run

DAY = "2026-01-05"
RAW_TABLES = ("raw.loans", "raw.payments", "raw.customers", "raw.fx_rates")


def test_valid_drop_lands_every_row_typed(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    write_drop(cartera.landing_path, DAY, tables)
    result = run(cartera, DAY)
    assert result.success

    for name in ("loans", "payments", "customers", "fx_rates"):
        assert count(cartera, f"raw.{name}", DAY) == len(tables[name])
    first = tables["loans"][0]
    row = query(cartera, "SELECT disbursement_date, outstanding_principal, days_past_due, source_line "
                         "FROM raw.loans WHERE loan_id = ?", [first["loan_id"]])
    assert row == [(first["disbursement_date"], Decimal(first["outstanding_principal"]),
                    int(first["days_past_due"]), 2)]
    assert query(cartera, "SELECT rate_to_pen FROM raw.fx_rates") == [(Decimal("3.712345"),)]
    assert query(cartera, "SELECT count(*) FROM raw.payments WHERE is_reversal") == [(1,)]

    files = query(cartera, "SELECT file_name, rows_read, rows_quarantined, rows_landed, length(sha256) "
                           "FROM raw.ingest_files ORDER BY file_name")
    assert files == sorted((f"{n}.csv", len(t), 0, len(t), 64) for n, t in tables.items())
    assert query(cartera, "SELECT status FROM raw.drops") == [("landed",)]

    evaluations = checks(result)
    assert len(evaluations) == 8 and all(e.passed for e in evaluations.values())
    meta = materializations(result)["raw/loans"]
    assert meta["rows_read"].value == len(tables["loans"])
    assert meta["rows_landed"].value == len(tables["loans"])
    assert meta["rows_quarantined"].value == 0
    assert meta["dates"].value == [DAY]
    assert len(meta["sha256"].value) == 64
    assert (cartera.warehouse_path / "quality" / f"quality_{DAY}.html").is_file()


def test_rerun_of_a_date_replaces_its_rows(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["loans"][3]["credit_type"] = "bogus"  # one quarantine row, to see it is not doubled
    write_drop(cartera.landing_path, DAY, tables)
    assert run(cartera, DAY).success
    snapshot = {t: query(cartera, f"SELECT * FROM {t} ORDER BY ALL") for t in RAW_TABLES}
    quarantine = query(cartera, "SELECT file_name, line_number, rule FROM raw.quarantine")

    assert run(cartera, DAY).success
    for table in RAW_TABLES:
        assert query(cartera, f"SELECT * FROM {table} ORDER BY ALL") == snapshot[table]
    assert query(cartera, "SELECT file_name, line_number, rule FROM raw.quarantine") == quarantine
    assert count(cartera, "raw.ingest_files", DAY) == 4
    assert query(cartera, "SELECT count(DISTINCT run_id), count(*) FROM raw.drops") == [(2, 2)]


def test_range_runs_dates_in_order_and_skips_missing_folders(tmp_path):
    cartera = resource(tmp_path)
    days = ["2026-01-05", "2026-01-07"]  # 2026-01-06 has no folder
    for day in days:
        write_drop(cartera.landing_path, day, valid_tables(day))
    result = run(cartera, "2026-01-05", "2026-01-07")
    assert result.success
    landed = query(cartera, "SELECT as_of_date, ingested_at FROM raw.drops ORDER BY ingested_at")
    assert [d.isoformat() for d, _ in landed] == days
    assert materializations(result)["raw/loans"]["dates"].value == days
    skipped = f"2026-01-06: no landing folder {cartera.landing_path / '2026-01-06'}; skipped"
    assert skipped in log_messages(result)


def test_range_without_any_folder_fails_clearly(tmp_path):
    cartera = resource(tmp_path)
    cartera.landing_path.mkdir(parents=True)
    result = run(cartera, "2026-01-10", "2026-01-11")
    assert not result.success
    assert failure_description(result) == (
        f"no landing folder for 2026-01-10..2026-01-11 under {cartera.landing_path} "
        "(expected <landing>/<YYYY-MM-DD>/)"
    )


def test_payment_id_already_landed_on_an_earlier_date_is_quarantined(tmp_path):
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    first, second = "2026-01-05", "2026-01-06"
    day1 = valid_tables(first)
    write_drop(cartera.landing_path, first, day1)
    day2 = valid_tables(second)
    reused = day1["payments"][0]["payment_id"]
    day2["payments"][2]["payment_id"] = reused
    write_drop(cartera.landing_path, second, day2)
    assert run(cartera, first, second).success

    rows = query(cartera, "SELECT as_of_date, file_name, line_number, rule, column_name FROM raw.quarantine")
    assert rows == [(dt.date(2026, 1, 6), "payments.csv", 4, "unique_across_days:payment_id", "payment_id")]
    assert query(cartera, "SELECT as_of_date FROM raw.payments WHERE payment_id = ?", [reused]) == [
        (dt.date(2026, 1, 5),)
    ]
    # re-running the first date is not a repeat of itself; the second date still is
    assert run(cartera, first).success
    assert run(cartera, second).success
    assert count(cartera, "raw.quarantine") == 1
    assert count(cartera, "raw.payments", first) == len(day1["payments"])


def test_payment_of_a_loan_seen_only_on_an_earlier_date_is_accepted(tmp_path):
    cartera = resource(tmp_path)
    first, second = "2026-01-05", "2026-01-06"
    day1 = valid_tables(first)
    write_drop(cartera.landing_path, first, day1)
    day2 = valid_tables(second)
    paid_off = day2["loans"].pop()  # left the portfolio on the second date...
    day2["payments"][0]["loan_id"] = paid_off["loan_id"]  # ...paid off that day
    day2["payments"][0]["currency"] = paid_off["currency"]
    write_drop(cartera.landing_path, second, day2)
    assert run(cartera, first, second).success
    assert count(cartera, "raw.quarantine") == 0
    assert query(cartera, "SELECT loan_id FROM raw.payments WHERE as_of_date = ? AND source_line = 2",
                 [second]) == [(paid_off["loan_id"],)]


VARIANTS = {
    "semicolon": dict(delimiter=";"),
    "latin-1": dict(encoding="latin-1"),
    "gzip": dict(gzip=True),
    "dd/mm/yyyy": dict(date_format="dmy"),
    "crlf": dict(newline="\r\n"),
    "extra and reordered columns": dict(columns={
        "loans": ["observacion", *reversed(COLUMNS["loans"])],
        "customers": [*COLUMNS["customers"], "segmento_cliente"],
    }),
    "all at once": dict(delimiter=";", encoding="latin-1", gzip=True, date_format="dmy"),
}


@pytest.fixture(scope="module")
def reference_rows(tmp_path_factory):
    """raw.* as landed from the plain dialect (UTF-8, ',', .csv, ISO dates)."""
    cartera = resource(tmp_path_factory.mktemp("plain"))
    write_drop(cartera.landing_path, DAY, valid_tables(DAY))
    assert run(cartera, DAY).success
    return {t: query(cartera, f"SELECT * FROM {t} ORDER BY source_line") for t in RAW_TABLES}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_allowed_dialect_lands_identical_rows(tmp_path, reference_rows, variant):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    write_drop(cartera.landing_path, DAY, tables, **VARIANTS[variant])
    result = run(cartera, DAY)
    assert result.success
    for table in RAW_TABLES:
        assert query(cartera, f"SELECT * FROM {table} ORDER BY source_line") == reference_rows[table], table
    names = {n for (n,) in query(cartera, "SELECT full_name FROM raw.customers")}
    assert {"José Núñez Peña", "María Ñahui Quispe", "Inversiones Muñoz, S.A.C.", 'Panadería "La Ñusta"'} <= names
    structure = checks(result)["customers_structure"].metadata["dates"].value[DAY]
    expected = VARIANTS[variant]
    assert structure["delimiter"] == expected.get("delimiter", ",")
    assert structure["encoding"] == expected.get("encoding", "utf-8")


def test_quoted_newline_and_blank_line_keep_line_numbers_exact(tmp_path):
    """A record spanning two lines counts as the line it starts on; a blank line is skipped
    but counted; the lines after both stay right."""
    cartera = resource(tmp_path, quarantine_threshold=0.5)
    tables = valid_tables(DAY)
    tables["customers"][1]["full_name"] = "María\nÑahui"  # written quoted: lines 3-4
    tables["customers"][4]["document_type"] = "XX"  # record 5
    folder = write_drop(cartera.landing_path, DAY, tables)
    lines = (folder / "customers.csv").read_text(encoding="utf-8").split("\n")
    lines.insert(5, "")  # a blank line 6: record 4 moves to line 7, record 5 to line 8
    (folder / "customers.csv").write_text("\n".join(lines), encoding="utf-8")
    assert run(cartera, DAY).success
    assert query(cartera, "SELECT line_number, rule FROM raw.quarantine WHERE file_name = 'customers.csv'") == [
        (8, "enum:document_type")
    ]
    assert query(cartera, "SELECT customer_id, source_line FROM raw.customers WHERE source_line < 9 "
                          "ORDER BY source_line") == [("C0001", 2), ("C0002", 3), ("C0003", 5), ("C0004", 7)]
    assert query(cartera, "SELECT full_name FROM raw.customers WHERE customer_id = 'C0002'") == [
        ("María\nÑahui",)
    ]
    raw_values = query(cartera, "SELECT raw_values FROM raw.quarantine WHERE file_name = ?", ["customers.csv"])
    assert json.loads(raw_values[0][0])["document_type"] == "XX"


def test_payments_file_may_hold_only_its_header(tmp_path):
    cartera = resource(tmp_path)
    tables = valid_tables(DAY)
    tables["payments"] = []
    folder = write_drop(cartera.landing_path, DAY, tables)
    assert (folder / "payments.csv").read_text().count("\n") == 1
    result = run(cartera, DAY)
    assert result.success
    assert count(cartera, "raw.payments", DAY) == 0
    assert count(cartera, "raw.loans", DAY) == len(tables["loans"])
    assert query(cartera, "SELECT rows_read, rows_landed FROM raw.ingest_files WHERE file_name = 'payments.csv'") == [
        (0, 0)
    ]
