"""The GX suites themselves: complete, versioned, loaded strictly, evaluated the same way
whatever the batch layout, cross-checked against the generator's own list of bad rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from broken_drop import drop_with_every_rule_broken
from drop_writer import write_drop
from ingest_harness import query, resource, run
from orchestration.config import EXPECTATIONS_DIR
from orchestration.ingest.pipeline import ingest_drop
from orchestration.quality.suites import SuiteRunner, rule_specs, suite_document

PROJECT = Path(__file__).resolve().parents[2]
EXTRACTS = ("loans", "payments", "customers", "fx_rates")

# contract section 1, rule by rule (type:<column> checks are made when files are read)
CONTRACT_RULES = {
    "loans": {
        "not_null:loan_id", "unique:loan_id", "reference:customer_id", "enum:credit_type",
        "enum:currency", "date_order:disbursement_date", "date_order:maturity_date",
        "range:original_amount", "range:outstanding_principal", "range:overdue_amount",
        "range:installment_amount", "range:days_past_due", "enum:accounting_status",
        "enum:guarantee_type",
    },
    "payments": {
        "not_null:payment_id", "unique:payment_id", "unique_across_days:payment_id",
        "reference:loan_id", "business_date:payment_date", "range:amount", "enum:currency",
        "enum:channel",
    },
    "customers": {
        "not_null:customer_id", "unique:customer_id", "enum:document_type",
        "format:document_number:DNI", "format:document_number:CE", "format:document_number:RUC",
        "format:document_number:PAS", "format:ubigeo",
    },
    "fx_rates": {"unique:currency", "not_pen:currency", "range:rate_to_pen"},
}


@pytest.mark.parametrize("name", EXTRACTS)
def test_suite_covers_the_contract_and_is_documented(name):
    doc = suite_document(name)
    assert doc["name"] == name
    assert doc["meta"]["version"] and doc["meta"]["notes"]
    rules = {spec.rule for spec in rule_specs(name)}
    assert CONTRACT_RULES[name] <= rules
    assert all(spec.description for spec in rule_specs(name))


def test_an_expectation_gx_cannot_parse_stops_the_runner(tmp_path):
    for name in EXTRACTS:
        shutil.copy(EXPECTATIONS_DIR / f"{name}.json", tmp_path / f"{name}.json")
    doc = json.loads((tmp_path / "loans.json").read_text())
    doc["expectations"][0]["kwargs"] = {"not_a_column_argument": "loan_id"}
    (tmp_path / "loans.json").write_text(json.dumps(doc))
    message = r"loans.json: expectation 1 \(expect_column_values_to_not_be_null, rule not_null:loan_id\) is not valid GX 1.x: .*not_a_column_argument"
    with pytest.raises(ValueError, match=message):
        SuiteRunner(["loans"], tmp_path)


def test_narrow_and_whole_frame_batches_find_the_same_rows(tmp_path, monkeypatch):
    """Big files are validated column group by column group; the answer must not change."""
    day = "2026-01-05"
    tables, expected = drop_with_every_rule_broken(day)
    found = {}
    for mode, narrow_from in (("whole", 10**9), ("narrow", 0)):
        cartera = resource(tmp_path / mode, quarantine_threshold=1.0)
        write_drop(cartera.landing_path, day, tables)
        runner = SuiteRunner(list(EXTRACTS))
        monkeypatch.setattr(runner, "NARROW_FROM_ROWS", narrow_from)
        con = cartera.connect()
        try:
            result = ingest_drop(con, cartera, day, mode, lambda: runner)
        finally:
            con.close()
        assert result.landed
        found[mode] = set(query(cartera, "SELECT file_name, line_number, rule, column_name FROM raw.quarantine"))
    assert found["whole"] == found["narrow"] == expected


def test_generated_bad_rows_are_exactly_the_quarantined_rows(tmp_path):
    """The generator lists every rule-breaking row it wrote; ingest must find those and no others,
    across dates (payment ids re-used from an earlier date) and in the most exotic dialect."""
    from orchestration.simulate import MANIFEST_FILE, generate_landing

    cartera = resource(tmp_path, quarantine_threshold=0.5)
    dates = generate_landing(
        cartera.landing_path, loans=300, days=3, seed=11, bad_row_share=0.02,
        delimiter=";", encoding="latin-1", gzip=True, date_format="dmy",
    )
    manifest = json.loads((cartera.landing_path / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["bad_rows"]
    result = run(cartera, dates[0].isoformat(), dates[-1].isoformat())
    assert result.success
    got = set(query(cartera, "SELECT CAST(as_of_date AS VARCHAR), file_name, line_number, column_name "
                             "FROM raw.quarantine"))
    assert got == {(e["date"], e["file"], e["line"], e["column"]) for e in manifest["bad_rows"]}
    for read, quarantined, landed in query(cartera, "SELECT rows_read, rows_quarantined, rows_landed "
                                                    "FROM raw.ingest_files"):
        assert landed + quarantined == read


def test_loading_the_ingest_definitions_does_not_import_gx():
    probe = (
        "import sys; import orchestration.ingest.assets as a; "
        "assert len(a.ingest_assets) == 1; print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
