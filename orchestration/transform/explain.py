"""`cartera explain LOAN_ID --date D`: why a loan got its segment, strategy and channel.

Reads the loan's row of ``marts.segment_assignments`` (its features as the pipeline computed
them), re-evaluates the rulebook's parsed conditions on those values in Python with SQL's
three-valued logic (:func:`orchestration.transform.rulebook.evaluate`, the same parse the SQL
was compiled from), and replays the channel substitutions from the strategy catalogue and
the field-coverage seed the run used (schema ``config``). The text is in Spanish: it is read
by collections analysts next to the Spanish reasons.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from orchestration.config import DBT_PROJECT_DIR
from orchestration.transform.rulebook import (
    FEATURE_KINDS,
    Always,
    Const,
    Feature,
    Rule,
    Rulebook,
    atoms,
    evaluate,
    evaluate_atom,
    format_constant,
)

ASSIGNMENTS = "marts.segment_assignments"
STRATEGIES = "config.strategies"
COVERAGE = "config.field_coverage_departments"

_VAR_DEFAULTS = {"digital_channels": ["whatsapp", "sms", "email"], "consent_fallback_channel": "llamada",
                 "no_action_channel": "ninguno", "contact_window_start": "07:00", "contact_window_end": "20:00"}
_MARK = {True: "✓", False: "✗", None: "?"}


class ExplainError(LookupError):
    """The loan or date cannot be explained (message says what is missing and what to run)."""


def explain_loan(con, loan_id: str, as_of_date: str, rulebook: Rulebook,
                 dbt_project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A Spanish, human-readable explanation of one loan's assignment on one business date.

    ``con`` is a (read-only) DuckDB connection to the pipeline warehouse.
    """
    try:
        day = dt.date.fromisoformat(as_of_date)
    except (TypeError, ValueError):
        raise ExplainError(f"--date {as_of_date!r}: expected a date YYYY-MM-DD") from None
    row = _assignment(con, loan_id, day)
    strategy = _one(con, f"select * from {STRATEGIES} where strategy_code = ?", [row["strategy_code"]])
    covered = {r[0] for r in con.execute(f"select department_code from {COVERAGE}").fetchall()}
    dbt_vars = _dbt_vars(dbt_project_dir)

    lines: list[str] = [f"Préstamo {loan_id} al {day.isoformat()}", ""]
    lines += _values_section(row, rulebook)
    lines += _rules_section(row, rulebook)
    lines += _strategy_section(row, strategy, covered, dbt_vars)
    return "\n".join(lines).rstrip() + "\n"


# ---- data access --------------------------------------------------------------------------
def _one(con, sql: str, params: list) -> dict[str, Any] | None:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    found = cur.fetchone()
    return dict(zip(names, found)) if found else None


def _assignment(con, loan_id: str, day: dt.date) -> dict[str, Any]:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'segment_assignments'").fetchone()[0]
    if not exists:
        raise ExplainError(f"the warehouse has no {ASSIGNMENTS} yet: run the pipeline first "
                           "(cartera run --from D --to D)")
    row = _one(con, f"select * from {ASSIGNMENTS} where loan_id = ? and as_of_date = ?", [loan_id, day])
    if row:
        return row
    dates = con.execute(f"select count(*) from {ASSIGNMENTS} where as_of_date = ?", [day]).fetchone()[0]
    if not dates:
        latest = con.execute(f"select max(as_of_date) from {ASSIGNMENTS}").fetchone()[0]
        raise ExplainError(f"{day.isoformat()} has not been processed (no rows in {ASSIGNMENTS}; latest "
                           f"processed date: {latest or 'none'}); run it with cartera run --from {day} --to {day}")
    near = con.execute(f"select min(as_of_date), max(as_of_date) from {ASSIGNMENTS} where loan_id = ?",
                       [loan_id]).fetchone()
    seen = f"it appears from {near[0]} to {near[1]}" if near[0] else "it is in no processed date"
    raise ExplainError(f"loan {loan_id!r} is not in the portfolio of {day.isoformat()} ({seen})")


def _dbt_vars(dbt_project_dir: Path) -> dict[str, Any]:
    """Channel policy vars from dbt_project.yml (what the SQL used), with the contract defaults."""
    try:
        project = yaml.safe_load((Path(dbt_project_dir) / "dbt_project.yml").read_text(encoding="utf-8"))
        configured = project.get("vars") or {}
    except (OSError, yaml.YAMLError):
        configured = {}
    return {key: configured.get(key, default) for key, default in _VAR_DEFAULTS.items()}


# ---- formatting ---------------------------------------------------------------------------
def format_value(feature: str, value: Any) -> str:
    """A feature value as the SQL reason shows it (S/ 12,300.00, 25.00%, sí, ...)."""
    if value is None:
        return "sin dato"
    kind = FEATURE_KINDS.get(feature, "text")
    if kind == "boolean":
        return "sí" if value else "no"
    if kind == "money":
        return f"S/ {Decimal(str(value)):,.2f}"
    if kind == "rate":
        return f"{Decimal(str(value)) * 100:.2f}%"
    if kind == "integer":
        return str(int(value))
    return str(value)


def _operand_text(operand, kind: str, labels: dict[str, str], values: dict[str, Any]) -> str:
    if isinstance(operand, Feature):
        return f"{labels.get(operand.name, operand.name)} {format_value(operand.name, values.get(operand.name))}"
    return format_constant(kind, operand.value)


def _atom_text(atom, labels: dict[str, str], values: dict[str, Any]) -> str:
    kind = FEATURE_KINDS[atom.left.name]
    left = _operand_text(atom.left, kind, labels, values)
    if atom.op == "is":
        return f"{left} es vacío"
    if atom.op == "is not":
        return f"{left} no es vacío"
    word = {"in": "en", "not in": "fuera de", "==": "=", "!=": "≠"}.get(atom.op, atom.op)
    right = _operand_text(atom.right, kind, labels, values) if isinstance(atom.right, (Feature, Const)) else ""
    return f"{left} {word} {right}"


# ---- sections -----------------------------------------------------------------------------
def _values_section(row: dict[str, Any], rulebook: Rulebook) -> list[str]:
    labels = rulebook.features
    width = max(len(name) for name in FEATURE_KINDS)
    lines = ["Valores del préstamo"]
    for name in FEATURE_KINDS:
        label = labels.get(name, "")
        lines.append(f"  {name:<{width}}  {format_value(name, row.get(name)):<22} {label}")
    own, aligned = row.get("sbs_category"), row.get("sbs_category_aligned")
    note = ("igual a la propia" if own == aligned else
            "más riesgosa que la propia: alineamiento interno con otro crédito del cliente")
    lines += ["", f"Categoría SBS: propia {own}, alineada {aligned} ({note})", ""]
    return lines


def _rules_section(row: dict[str, Any], rulebook: Rulebook) -> list[str]:
    labels = rulebook.features
    matched = rulebook.first_match(row)
    lines = [f"Reglamento {rulebook.version} ({len(rulebook.rules)} reglas; gana la primera que se cumple)"]
    stored_version = row.get("rulebook_version")
    if stored_version and stored_version != rulebook.version:
        lines.append(f"  Atención: esta asignación se hizo con el reglamento {stored_version}; "
                     f"la explicación usa el actual {rulebook.version}.")
    if matched.id != row.get("rule_id"):
        lines.append(f"  Atención: con el reglamento actual aplicaría la regla '{matched.id}', "
                     f"pero la asignación guardada tiene '{row.get('rule_id')}'.")
    lines.append("")
    for rule in rulebook.rules:
        if rule.position > matched.position:
            break
        lines += _rule_lines(rule, row, labels, matched=rule is matched)
    lines += [f"Segmento: {row['segment_code']} ({matched.segment_name}) — regla '{row.get('rule_id')}'",
              f"Motivo: {row.get('reason')}", ""]
    return lines


def _rule_lines(rule: Rule, values: dict[str, Any], labels: dict[str, str], matched: bool) -> list[str]:
    head = "APLICA" if matched else "no aplica"
    lines = [f"  #{rule.position} {rule.id} [{head}] {rule.description}",
             f"      condición: {rule.canonical_condition}"]
    if isinstance(rule.condition, Always):
        lines.append("      ✓ regla de cierre: se cumple siempre")
        return lines
    for atom in atoms(rule.condition):
        result = evaluate_atom(atom, values)
        why = {False: "  <- falla", None: "  <- sin dato: no se cumple"}.get(result, "")
        lines.append(f"      {_MARK[result]} {_atom_text(atom, labels, values)}{why}")
    if not matched and evaluate(rule.condition, values) is None:
        lines.append("      (la condición queda indeterminada por un valor vacío, y no se cumple)")
    return lines


def _strategy_section(row: dict[str, Any], strategy: dict[str, Any] | None, covered: set[str],
                      dbt_vars: dict[str, Any]) -> list[str]:
    code = row["strategy_code"]
    if strategy is None:
        return [f"Estrategia {code}: no está en {STRATEGIES} (catálogo cambiado después de la corrida)"]
    discount = strategy.get("offer_max_discount")
    offer = strategy["offer"] + (f" (hasta {Decimal(str(discount)) * 100:.0f}% del saldo)" if discount else "")
    lines = [f"Estrategia: {code} — {strategy['strategy_description']}",
             f"  oferta: {offer}; responsable: {strategy.get('assignee') or 'ninguno'}"]

    channel = strategy["primary_channel"]
    steps = [f"  canal principal: {channel}"]
    department = row.get("department_code")
    if strategy.get("needs_field_coverage") and department not in covered:
        fallback = strategy.get("fallback_channel") or channel
        where = f"departamento {department}" if department else "cliente sin departamento"
        steps.append(f"  {channel} -> {fallback}: {where} sin cobertura de campo")
        channel = fallback
    elif strategy.get("needs_field_coverage"):
        steps.append(f"  {channel}: departamento {department} con cobertura de campo")
    if channel in dbt_vars["digital_channels"] and not row.get("digital_contact_consent"):
        fallback = dbt_vars["consent_fallback_channel"]
        steps.append(f"  {channel} -> {fallback}: sin consentimiento de contacto digital")
        channel = fallback
    lines += steps
    lines.append(f"  canal final: {row.get('channel')}")
    if channel != row.get("channel"):
        lines.append(f"  Atención: con el catálogo actual el canal sería {channel}.")
    if row.get("channel") == dbt_vars["no_action_channel"]:
        lines.append("Próximo contacto: ninguno (sin acción)")
    else:
        lines.append(f"Próximo contacto: {row.get('next_contact_date')} (primer día hábil después del "
                     f"{row['as_of_date']}; lunes a viernes sin feriados), entre "
                     f"{dbt_vars['contact_window_start']} y {dbt_vars['contact_window_end']}")
    return lines
