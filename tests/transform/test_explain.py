"""`explain_loan` on a small warehouse written here: which rule matched, why each earlier
rule failed (atom by atom, with SQL's treatment of missing values), the channel
substitutions, and clear errors for a loan or date that is not there."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.config import DBT_PROJECT_DIR, RULEBOOK_PATH
from orchestration.transform.explain import ExplainError, explain_loan, format_value
from orchestration.transform.rulebook import FEATURE_KINDS, load_rulebook

SEEDS = DBT_PROJECT_DIR / "seeds"
COLUMNS = ["as_of_date", "loan_id", "customer_id", *FEATURE_KINDS, "segment_code", "rule_id", "rulebook_version",
           "reason", "strategy_code", "channel", "offer", "assignee", "next_contact_date"]


def loan(**values) -> dict:
    base = {name: None for name in COLUMNS}
    base.update(as_of_date=dt.date(2026, 4, 1), customer_id="C1", accounting_status="vigente",
                credit_type="consumo_no_revolvente", balance_pen=Decimal("100.00"), dpd=0, max_dpd_12m=0,
                delinquency_episodes_12m=0, sbs_category="NOR", sbs_category_aligned="NOR",
                department_code="15", digital_contact_consent=True, next_contact_date=dt.date(2026, 4, 6))
    base.update(values)
    return base


@pytest.fixture()
def warehouse(tmp_path: Path):
    rulebook = load_rulebook()
    rows = [
        loan(loan_id="VISITA_AYACUCHO", dpd=100, max_dpd_12m=100, balance_pen=Decimal("7000.00"), department_code="05",
             credit_type="microempresa", segment_code="PREJUDICIAL", rule_id="prejudicial", strategy_code="PREJUDICIAL_VISITA",
             channel="llamada", reason="días de atraso 100 en 91–120"),
        loan(loan_id="WHATSAPP_SIN_CONSENTIMIENTO", dpd=10, max_dpd_12m=10, delinquency_episodes_12m=1,
             digital_contact_consent=False, segment_code="TEMPRANA_BUEN_HISTORIAL", rule_id="temprana_buen_historial",
             strategy_code="FLEXIBLE_DIGITAL", channel="llamada", reason="días de atraso 10 en 1–30; ..."),
        loan(loan_id="EPISODIOS_DESCONOCIDOS", dpd=10, max_dpd_12m=10, delinquency_episodes_12m=None,
             segment_code="TEMPRANA_REINCIDENTE", rule_id="temprana_reincidente", strategy_code="CALL_CENTER_TEMPRANA",
             channel="llamada", reason="días de atraso 10 en 1–30"),
        loan(loan_id="ALINEADO", dpd=0, sbs_category="NOR", sbs_category_aligned="DUD", provision_rate=Decimal("0.6"),
             segment_code="AL_DIA", rule_id="al_dia", strategy_code="SIN_ACCION", channel="ninguno",
             next_contact_date=None, reason="sin atraso ni alertas: al día", rulebook_version="v0-000000000000"),
    ]
    for row in rows:
        row["rulebook_version"] = row["rulebook_version"] or rulebook.version
    db = tmp_path / "cartera.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    con.execute("create schema config")
    types = {"integer": "integer", "money": "decimal(18,2)", "rate": "decimal(9,6)", "text": "varchar",
             "boolean": "boolean"}
    ddl = ", ".join(f"{c} {types[FEATURE_KINDS[c]] if c in FEATURE_KINDS else 'date' if 'date' in c else 'varchar'}"
                    for c in COLUMNS)
    con.execute(f"create table marts.segment_assignments ({ddl})")
    con.executemany(f"insert into marts.segment_assignments values ({', '.join('?' * len(COLUMNS))})",
                    [[row[c] for c in COLUMNS] for row in rows])
    con.execute(f"create table config.strategies as select * from read_csv('{SEEDS / 'strategies.csv'}', "
                "header=true, types={'needs_field_coverage': 'BOOLEAN'})")
    con.execute(f"create table config.field_coverage_departments as select * from "
                f"read_csv('{SEEDS / 'field_coverage_departments.csv'}', header=true, all_varchar=true)")
    con.close()
    con = duckdb.connect(str(db), read_only=True)
    yield con, rulebook
    con.close()


def test_field_coverage_substitution_and_failed_rules(warehouse):
    con, rulebook = warehouse
    text = explain_loan(con, "VISITA_AYACUCHO", "2026-04-01", rulebook)
    assert text.startswith("Préstamo VISITA_AYACUCHO al 2026-04-01\n")
    assert "#5 prejudicial [APLICA]" in text
    assert "✗ días de atraso 100 > 120  <- falla" in text          # rule 4 failed on dpd
    assert "✗ situación contable vigente = castigado  <- falla" in text
    assert "visita_campo -> llamada: departamento 05 sin cobertura de campo" in text
    assert "#6 " not in text
    assert "entre 07:00 y 20:00" in text and "2026-04-06" in text
    assert "Atención" not in text


def test_consent_substitution(warehouse):
    con, rulebook = warehouse
    text = explain_loan(con, "WHATSAPP_SIN_CONSENTIMIENTO", "2026-04-01", rulebook)
    assert "#9 temprana_buen_historial [APLICA]" in text
    assert "whatsapp -> llamada: sin consentimiento de contacto digital" in text
    assert "canal final: llamada" in text


def test_a_missing_value_fails_a_comparison_like_sql(warehouse):
    con, rulebook = warehouse
    text = explain_loan(con, "EPISODIOS_DESCONOCIDOS", "2026-04-01", rulebook)
    assert "? episodios de mora 12 meses sin dato <= 1  <- sin dato: no se cumple" in text
    assert "#10 temprana_reincidente [APLICA]" in text


def test_alignment_no_action_and_an_older_rulebook_version(warehouse):
    con, rulebook = warehouse
    text = explain_loan(con, "ALINEADO", "2026-04-01", rulebook)
    assert "Categoría SBS: propia NOR, alineada DUD" in text
    assert "#12 al_dia [APLICA]" in text
    assert "Próximo contacto: ninguno (sin acción)" in text
    assert f"se hizo con el reglamento v0-000000000000; la explicación usa el actual {rulebook.version}" in text


def test_the_current_rulebook_is_used_for_the_replay(warehouse, tmp_path):
    """With an edited rulebook the replay says which rule would apply now."""
    con, _ = warehouse
    edited = tmp_path / "rulebook.yml"
    text = RULEBOOK_PATH.read_text(encoding="utf-8").replace("condition: 91 <= dpd <= 120", "condition: 91 <= dpd <= 99")
    edited.write_text(text, encoding="utf-8")
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEEDS / "strategies.csv", tmp_path / "seeds")
    rulebook = load_rulebook(edited, dbt_project_dir=tmp_path)
    out = explain_loan(con, "VISITA_AYACUCHO", "2026-04-01", rulebook)
    # dpd 100 is no longer in 91–99 nor in any later range: only the catch-all remains
    assert "con el reglamento actual aplicaría la regla 'al_dia', pero la asignación guardada tiene 'prejudicial'" in out
    assert "✗ días de atraso 100 <= 99  <- falla" in out
    assert "#12 al_dia [APLICA]" in out


@pytest.mark.parametrize(
    "loan_id, day, message",
    [
        ("NOPE", "2026-04-01", "loan 'NOPE' is not in the portfolio of 2026-04-01 (it is in no processed date)"),
        ("ALINEADO", "2026-04-02", "2026-04-02 has not been processed"),
        ("ALINEADO", "01/04/2026", "expected a date YYYY-MM-DD"),
    ],
)
def test_clear_errors(warehouse, loan_id, day, message):
    con, rulebook = warehouse
    with pytest.raises(ExplainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        explain_loan(con, loan_id, day, rulebook)


def test_empty_warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    with pytest.raises(ExplainError, match="has no marts.segment_assignments yet: run the pipeline first"):
        explain_loan(con, "L1", "2026-04-01", load_rulebook())
    con.close()


def test_value_formatting_matches_the_sql_reasons():
    assert format_value("balance_pen", Decimal("1234567.5")) == "S/ 1,234,567.50"
    assert format_value("provision_rate", Decimal("0.0125")) == "1.25%"
    assert format_value("digital_contact_consent", False) == "no"
    assert format_value("days_since_last_payment", None) == "sin dato"
