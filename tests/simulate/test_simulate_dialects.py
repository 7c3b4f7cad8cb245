"""Every dialect the contract allows carries the same content; same seed, same bytes."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sim_contract import (
    COLUMNS,
    DATE_COLUMNS,
    money_total,
    parse_date,
    read_bytes,
    read_control,
    read_rows,
)

from orchestration.simulate import generate_landing

SMALL = dict(loans=400, days=4, start=dt.date(2026, 7, 27), seed=5)  # Jul 28-29 are holidays

VARIANTS = {
    "semicolon": dict(delimiter=";"),
    "latin1": dict(encoding="latin-1"),
    "gzip": dict(gzip=True),
    "dmy": dict(date_format="dmy"),
    "all": dict(delimiter=";", encoding="latin-1", gzip=True, date_format="dmy"),
}


@pytest.fixture(scope="module")
def default_landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("default")
    return root, generate_landing(root, **SMALL)


def content(root, dates, delimiter=",", encoding="utf-8", gzip=False, date_format="iso"):
    """Every extract of every date, parsed, with dates normalised to ISO."""
    out = {}
    for day in dates:
        for extract in COLUMNS:
            name = f"{extract}.csv.gz" if gzip else f"{extract}.csv"
            header, rows = read_rows(root / day.isoformat() / name, delimiter, encoding)
            for row in rows:
                for col in DATE_COLUMNS.get(extract, ()):
                    if row[col]:
                        row[col] = parse_date(row[col], date_format).isoformat()
            out[(day, extract)] = (header, rows)
    return out


def test_dates_skip_the_july_holidays(default_landing):
    _, dates = default_landing
    assert dates == [dt.date(2026, 7, 27), dt.date(2026, 7, 30), dt.date(2026, 7, 31), dt.date(2026, 8, 3)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_is_readable_and_equal_in_content(tmp_path, default_landing, variant):
    base_root, dates = default_landing
    options = VARIANTS[variant]
    assert generate_landing(tmp_path, **SMALL, **options) == dates
    assert content(tmp_path, dates, **options) == content(base_root, dates)
    for day in dates:
        folder = tmp_path / day.isoformat()
        control = read_control(folder)  # always UTF-8 with ','
        suffix = ".csv.gz" if options.get("gzip") else ".csv"
        assert list(control) == [f"{e}{suffix}" for e in ("loans", "payments", "customers", "fx_rates")]
        assert all((folder / name).is_file() for name in control)
        assert (folder / "_control.csv").read_bytes().startswith(b"file_name,row_count,control_total\n")
        _, loans = read_rows(folder / f"loans{suffix}", options.get("delimiter", ","), options.get("encoding", "utf-8"))
        assert control[f"loans{suffix}"] == (len(loans), money_total(r["outstanding_principal"] for r in loans))


def test_latin1_keeps_enye_and_accents(tmp_path, default_landing):
    base_root, dates = default_landing
    generate_landing(tmp_path, **SMALL, encoding="latin-1")
    raw = read_bytes(tmp_path / dates[0].isoformat() / "customers.csv")
    assert "ñ".encode("latin-1") in raw and "á".encode("latin-1") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    names = {r["full_name"] for r in read_rows(tmp_path / dates[0].isoformat() / "customers.csv", encoding="latin-1")[1]}
    base = {r["full_name"] for r in read_rows(base_root / dates[0].isoformat() / "customers.csv")[1]}
    assert names == base and any("ñ" in n for n in names)


def test_gzip_files_are_gzip(tmp_path):
    generate_landing(tmp_path, **SMALL, gzip=True)
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert (folder / "loans.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert not (folder / "loans.csv").exists()


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    args = dict(loans=300, days=3, start=dt.date(2026, 1, 5), bad_row_share=0.02, gzip=True)
    generate_landing(tmp_path / "a", seed=3, **args)
    generate_landing(tmp_path / "b", seed=3, **args)
    generate_landing(tmp_path / "c", seed=4, **args)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    a = read_rows(tmp_path / "a" / "2026-01-05" / "loans.csv.gz")[1]
    c = read_rows(tmp_path / "c" / "2026-01-05" / "loans.csv.gz")[1]
    assert [r["outstanding_principal"] for r in a] != [r["outstanding_principal"] for r in c]
    ca = read_rows(tmp_path / "a" / "2026-01-05" / "customers.csv.gz")[1]
    cc = read_rows(tmp_path / "c" / "2026-01-05" / "customers.csv.gz")[1]
    assert [r["document_number"] for r in ca] != [r["document_number"] for r in cc]
    assert [r["full_name"] for r in ca] != [r["full_name"] for r in cc]


def test_regenerating_into_the_same_folder_leaves_no_stale_files(tmp_path):
    generate_landing(tmp_path, **SMALL, gzip=True)
    generate_landing(tmp_path, **SMALL)
    folder = tmp_path / SMALL["start"].isoformat()
    assert sorted(p.name for p in folder.iterdir()) == [
        "_control.csv", "customers.csv", "fx_rates.csv", "loans.csv", "payments.csv"]


@pytest.mark.parametrize(
    "bad",
    [dict(delimiter="|"), dict(encoding="utf-16"), dict(date_format="mdy"), dict(bad_row_share=0.9), dict(loans=0)],
)
def test_bad_arguments_are_refused_with_a_clear_message(tmp_path, bad):
    args = {**SMALL, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate_landing(tmp_path, **args)


@pytest.mark.parametrize("variant", ["default", "all"])
def test_duckdb_reads_the_types_the_contract_names(tmp_path, variant):
    """A second, independent reader: DuckDB's CSV sniffer finds dates, numbers and integers."""
    import duckdb

    options = VARIANTS.get(variant, {})
    dates = generate_landing(tmp_path, **SMALL, **options)
    folder = tmp_path / dates[-1].isoformat()
    suffix = ".csv.gz" if options.get("gzip") else ".csv"
    reader = (
        f"read_csv('{folder / ('loans' + suffix)}', header=true, delim='{options.get('delimiter', ',')}', "
        f"encoding='{options.get('encoding', 'utf-8')}', "
        f"dateformat='{'%d/%m/%Y' if options.get('date_format') == 'dmy' else '%Y-%m-%d'}')"
    )
    con = duckdb.connect()
    types = dict(con.execute(f"select column_name, column_type from (describe select * from {reader})").fetchall())
    assert {types[c] for c in ("disbursement_date", "maturity_date", "next_due_date")} == {"DATE"}
    assert types["days_past_due"] in ("BIGINT", "INTEGER")
    assert types["outstanding_principal"] in ("DOUBLE",) or types["outstanding_principal"].startswith("DECIMAL")
    count, total = con.execute(f"select count(*), sum(outstanding_principal::decimal(18,2)) from {reader}").fetchone()
    assert read_control(folder)[f"loans{suffix}"] == (count, f"{total:.2f}")
