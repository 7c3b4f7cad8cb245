"""The rulebook loader refuses every unsafe or inconsistent file, naming file, line and rule;
the compiler emits SQL that can reach only feature columns; the version follows the bytes."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from orchestration.config import DBT_PROJECT_DIR, RULEBOOK_PATH
from orchestration.transform.rulebook import (
    FEATURE_KINDS,
    GENERATED_MACRO,
    MAX_FILE_BYTES,
    RulebookError,
    compile_rulebook,
    condition_sql,
    evaluate,
    load_rulebook,
    render_macros,
    sql_literal,
)

DEFAULT_TEXT = RULEBOOK_PATH.read_text(encoding="utf-8")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A dbt project folder holding only what the compiler reads (the strategy seed)."""
    (tmp_path / "seeds").mkdir()
    shutil.copy(DBT_PROJECT_DIR / "seeds" / "strategies.csv", tmp_path / "seeds" / "strategies.csv")
    return tmp_path


def write(tmp_path: Path, text: str, name: str = "rulebook.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_once(old: str, new: str, text: str = DEFAULT_TEXT) -> str:
    assert text.count(old) == 1, f"fixture text {old!r} must occur exactly once"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# --------------------------------------------------------------------------------------------
def test_default_rulebook_matches_the_contract_table():
    rulebook = load_rulebook()
    assert [r.segment_code for r in rulebook.rules] == [
        "CASTIGO_RECUPERO", "JUDICIAL", "DEMANDA", "AGENCIA_EXTERNA", "PREJUDICIAL", "TARDIA_MYPE",
        "TARDIA_ALTO_MONTO", "TARDIA", "TEMPRANA_BUEN_HISTORIAL", "TEMPRANA_REINCIDENTE", "PREVENTIVA", "AL_DIA"]
    assert [r.strategy_code for r in rulebook.rules] == [
        "RECUPERO_AGENCIA", "SEGUIMIENTO_JUDICIAL", "DEMANDA_JUDICIAL", "AGENCIA_DESCUENTO",
        "PREJUDICIAL_VISITA", "ASESOR_NEGOCIOS", "REFINANCIACION", "CALL_CENTER_PLAN", "FLEXIBLE_DIGITAL",
        "CALL_CENTER_TEMPRANA", "RECORDATORIO_PREVENTIVO", "SIN_ACCION"]
    assert rulebook.rules[-1].is_catch_all
    assert re.fullmatch(r"v1-[0-9a-f]{12}", rulebook.version)


@pytest.mark.parametrize(
    "values, segment",
    [
        ({"accounting_status": "castigado", "dpd": 200, "balance_pen": Decimal("50000.00")}, "CASTIGO_RECUPERO"),
        ({"accounting_status": "vencido", "dpd": 150, "balance_pen": Decimal("30000.00")}, "DEMANDA"),
        ({"accounting_status": "vencido", "dpd": 150, "balance_pen": Decimal("29999.99")}, "AGENCIA_EXTERNA"),
        ({"accounting_status": "vencido", "dpd": 45, "balance_pen": Decimal("50000.00"),
          "credit_type": "microempresa"}, "TARDIA_MYPE"),
        ({"accounting_status": "vigente", "dpd": 12, "delinquency_episodes_12m": 2, "max_dpd_12m": 12,
          "credit_type": "hipotecario"}, "TEMPRANA_REINCIDENTE"),
        ({"accounting_status": "vigente", "dpd": 0, "max_dpd_12m": 31}, "PREVENTIVA"),
        ({"accounting_status": "vigente", "dpd": 0, "max_dpd_12m": 30}, "AL_DIA"),
        # unknown values never satisfy a comparison (SQL semantics): falls through to the catch-all
        ({"accounting_status": "vigente", "dpd": 0, "max_dpd_12m": None}, "AL_DIA"),
    ],
)
def test_python_evaluation_follows_first_match(values, segment):
    base = {name: None for name in FEATURE_KINDS}
    assert load_rulebook().first_match({**base, **values}).segment_code == segment


def test_three_valued_logic_of_evaluate():
    rulebook = load_rulebook()
    cond = rulebook.rule("temprana_buen_historial").condition
    assert evaluate(cond, {"dpd": 5, "delinquency_episodes_12m": None, "max_dpd_12m": 5}) is None
    assert evaluate(cond, {"dpd": 50, "delinquency_episodes_12m": None, "max_dpd_12m": 5}) is False


# --------------------------------------------------------------------------------------------
# Refusals: each names the file, the line, the rule id and its position.
# --------------------------------------------------------------------------------------------
CONDITION_ABUSES = {
    "unknown name": ("dpdd > 120", "unknown name 'dpdd'"),
    "function call": ("abs(dpd) > 120", "function calls are not allowed"),
    "attribute": ("dpd.real > 120", "attribute access"),
    "subscript": ("credit_type[0] == 'm'", "indexing"),
    "statement separator": ("dpd > 120; drop table marts.segment_assignments", "';' is not allowed"),
    "comment": ("dpd > 120  # or everything", "comments ('#') are not allowed"),
    "sql comment": ("dpd > 120 -- 1", "arithmetic"),
    "sql block comment": ("dpd > 120 /* x */", "cannot read the condition"),
    "sql equals": ("dpd > 120 or 1 = 1", "use '==' to compare"),
    "sql keyword": ("dpd > 120 OR true", "cannot read the condition"),
    "string concatenation": ("credit_type == 'micro' + 'empresa'", "arithmetic and string concatenation"),
    "arithmetic": ("balance_pen * 2 >= 30000", "arithmetic"),
    "jinja in a string": ("product_code == '{{ run_query(\"drop schema marts\") }}'", "may hold only letters"),
    "backslash in a string": ("product_code == 'a\\\\b'", "may hold only letters"),
    "lambda": ("(lambda: dpd)() > 1", "function calls"),
    "conditional expression": ("dpd if dpd else 0", "if/else expressions"),
    "set literal": ("credit_type in {'microempresa'}", "sets"),
    "f-string": ("product_code == f'{dpd}'", "f-strings"),
    "dunder name": ("__import__ == 1", "unknown name '__import__'"),
    "ordering on text": ("credit_type > 'a'", "can be compared only with ==, != or in"),
    "number against text": ("dpd == 'treinta'", "expected a number"),
    "text against number": ("credit_type == 3", "expected a quoted text"),
    "bool as number": ("dpd > True", "expected a number"),
    "typo in a closed value": ("accounting_status == 'castigdo'", "'castigdo' is not a value of accounting_status"),
    "equality with None": ("days_since_last_payment == None", "is None"),
    "bare constant": ("1", "alone is not a condition"),
    "bare non-boolean feature": ("dpd", "alone is not a condition"),
    "infinite number": ("dpd > 1e999", "out of range"),
    "list after a comparison": ("dpd == (1, 2)", "a list can only follow 'in'"),
    "empty list": ("credit_type in ()", "empty list"),
    "constants only": ("1 < 2", "needs a feature"),
    "feature of another kind": ("dpd > credit_type", "cannot be compared"),
    "walrus": ("(x := 1) > 0", "assignments"),
}


@pytest.mark.parametrize("abuse", sorted(CONDITION_ABUSES))
def test_condition_abuse_is_refused_naming_the_rule(tmp_path, abuse):
    condition, expected = CONDITION_ABUSES[abuse]
    quoted = "'" + condition.replace("'", "''") + "'"
    text = replace_once("condition: dpd > 120\n", f"condition: {quoted}\n")
    path = write(tmp_path, text)
    with pytest.raises(RulebookError) as refused:
        load_rulebook(path)
    message = str(refused.value)
    assert expected in message
    assert message.startswith(f"{path}:{line_of(text, quoted)}:")
    assert "rule 'agencia_externa' (#4):" in message


def test_error_column_points_at_the_offending_name(tmp_path):
    text = replace_once("condition: dpd > 120\n", "condition: dpd > 120 and balanse_pen > 1\n")
    path = write(tmp_path, text)
    with pytest.raises(RulebookError) as refused:
        load_rulebook(path)
    line = line_of(text, "balanse_pen")
    line_start = text.rfind("\n", 0, text.index("balanse_pen")) + 1
    column = text.index("balanse_pen") - line_start + 1
    assert str(refused.value).startswith(f"{path}:{line}:{column}: rule 'agencia_externa' (#4): unknown name")


def rules_text(rules: list[str], header: str | None = None) -> str:
    head = header if header is not None else DEFAULT_TEXT[: DEFAULT_TEXT.index("rules:")]
    return head + "rules:\n" + "".join(rules)


def rule(rule_id: str, condition: str, segment: str = "X", strategy: str = "SIN_ACCION", extra: str = "") -> str:
    return (f"  - id: {rule_id}\n    description: d\n    condition: {condition}\n    segment_code: {segment}\n"
            f"    segment_name: n\n    strategy_code: {strategy}\n{extra}")


FILE_ABUSES = {
    "duplicate rule id": (rules_text([rule("a", "dpd > 1", "A"), rule("a", "dpd > 2", "A"), rule("z", "true", "Z")]),
                          "rule 'a' (#2): duplicate rule id; rule #1 already uses 'a'"),
    "no catch-all at the end": (rules_text([rule("a", "dpd > 1", "A"), rule("b", "dpd > 2", "B")]),
                                "rule 'b' (#2): the last rule must be the catch-all"),
    "catch-all before the end": (rules_text([rule("a", "true", "A"), rule("b", "always", "B")]),
                                 "rule 'a' (#1): a catch-all condition (true) must be the last rule"),
    "unknown strategy": (rules_text([rule("a", "dpd > 1", "A", "LLAMAR_MUCHO"), rule("z", "true", "Z")]),
                         "rule 'a' (#1): strategy_code 'LLAMAR_MUCHO' is not in the strategy catalogue"),
    "typo in a key": (rules_text([rule("a", "dpd > 1", "A", extra="    segmnet_name: y\n"), rule("z", "true", "Z")]),
                      "rule 'a' (#1): unknown key 'segmnet_name'"),
    "duplicate key": (rules_text([rule("a", "dpd > 1", "A", extra="    condition: true\n"), rule("z", "true", "Z")]),
                      "rule 'a' (#1): duplicate key 'condition'"),
    "missing key": (rules_text(["  - id: a\n    description: d\n    condition: dpd > 1\n    segment_code: A\n"
                                "    strategy_code: SIN_ACCION\n", rule("z", "true", "Z")]),
                    "rule 'a' (#1): missing key 'segment_name'"),
    "reserved segment": (rules_text([rule("a", "dpd > 1", "NUEVO"), rule("z", "true", "Z")]),
                         "rule 'a' (#1): segment_code 'NUEVO' is reserved"),
    "segment with two strategies": (rules_text([rule("a", "dpd > 1", "A", "SIN_ACCION"),
                                                rule("b", "dpd > 2", "A", "CALL_CENTER_PLAN"), rule("z", "true", "Z")]),
                                    "rule 'b' (#2): segment 'A' already has name"),
    "sql in a rule id": (rules_text([rule("a'; drop table x; --", "dpd > 1", "A"), rule("z", "true", "Z")]),
                         "the rule id \"a'; drop table x; --\" is not a valid code"),
    "jinja in a description": (rules_text([rule("a", "dpd > 1", "A").replace("description: d",
                                                                              "description: '{{ log(1) }}'"),
                                           rule("z", "true", "Z")]),
                               "rule 'a' (#1): description contains the character '{'"),
    "unknown feature label": (replace_once("  dpd: días de atraso\n", "  dpd: días de atraso\n  saldo_total: x\n"),
                              "unknown feature 'saldo_total'"),
    "feature without a label": (replace_once("  dpd_bucket: tramo de atraso\n", "",
                                             replace_once("condition: dpd > 120\n", "condition: dpd_bucket == '>365'\n")),
                                "feature 'dpd_bucket' has no label"),
    "yaml alias": (replace_once("description: Mora tardía\n", "description: &d Mora tardía\n").replace(
        "description: Mora tardía de alto monto", "x").replace("    segment_name: Preventiva\n",
                                                                "    segment_name: *d\n"),
                   "YAML anchors and aliases are not allowed"),
    "not yaml": ("rules: [a, b\n", "not valid YAML"),
    "empty file": ("", "the file is empty"),
    "missing rules": ("version_label: v1\nfeatures: {dpd: x}\n", "missing key 'rules'"),
    "bad version label": (replace_once("version_label: v1", "version_label: 'v1; drop'"), "version_label must be"),
}


@pytest.mark.parametrize("abuse", sorted(FILE_ABUSES))
def test_file_abuse_is_refused(tmp_path, abuse):
    text, expected = FILE_ABUSES[abuse]
    path = write(tmp_path, text)
    with pytest.raises(RulebookError) as refused:
        load_rulebook(path)
    assert expected in str(refused.value)
    assert str(refused.value).startswith(f"{path}:")


def test_huge_file_and_too_many_rules_are_refused(tmp_path):
    padded = write(tmp_path, DEFAULT_TEXT + "#" * MAX_FILE_BYTES, "padded.yml")
    with pytest.raises(RulebookError, match=f"at most {MAX_FILE_BYTES} bytes"):
        load_rulebook(padded)
    many = [rule(f"r{i}", f"dpd == {i}", f"S{i}") for i in range(501)] + [rule("z", "true", "Z")]
    path = write(tmp_path, rules_text(many, header="version_label: v1\nfeatures:\n  dpd: d\n"), "many.yml")
    assert path.stat().st_size < MAX_FILE_BYTES
    with pytest.raises(RulebookError, match="502 rules; at most 500"):
        load_rulebook(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(RulebookError, match="rulebook file not found"):
        load_rulebook(tmp_path / "nope.yml")


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------
SQL_WORDS = {"case", "when", "then", "else", "end", "and", "or", "not", "in", "is", "null", "true", "false"}


def identifiers(sql: str) -> set[str]:
    without_literals = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_literals))


def macro_body(macros: str, name: str) -> str:
    return re.search(r"\{% macro " + name + r"\(.*?\) -%\}(.*?)\{%- endmacro %\}", macros, re.S).group(1)


def test_compiled_conditions_reference_only_feature_columns(tmp_path, project):
    text = replace_once("condition: dpd > 120\n",
                        "condition: 'dpd > 120 and product_code in (\"O''Brien\", ''A-1 / b'', ''x, y'') "
                        "and not (department_code == ''15'' or days_since_last_payment is None)'\n")
    path = write(tmp_path, text)
    rulebook = compile_rulebook(path, project)
    macros = (project / GENERATED_MACRO).read_text(encoding="utf-8")
    case = macro_body(macros, "rulebook_rule_id")
    assert identifiers(case) - SQL_WORDS <= set(FEATURE_KINDS)
    # quotes are doubled inside SQL literals, and the negation was pushed down (De Morgan)
    assert "product_code in ('O''Brien', 'A-1 / b', 'x, y')" in case
    assert "department_code <> '15' and days_since_last_payment is not null" in case
    # the reason macro only formats feature columns
    reason = macro_body(macros, "rulebook_reason")
    formatted = set(re.findall(r"rulebook_format_\w+\('(\w+)'\)", reason))
    assert formatted and formatted <= set(FEATURE_KINDS)
    jinja = re.findall(r"\{\{.*?\}\}", reason)
    assert all(j == "{{ rule_id_column }}" or j.startswith("{{ dbt.concat([") for j in jinja)
    assert rulebook.rule("agencia_externa").position == 4
    rows = macro_body(macros, "rulebook_rules")
    assert identifiers(rows) <= {"select", "as", "union", "all", "rule_id", "rule_order", "segment_code",
                                 "segment_name", "strategy_code", "rule_description", "rule_condition"}


def test_sql_literals_escape_quotes():
    assert sql_literal("O'Brien") == "'O''Brien'"
    assert sql_literal(29999.99) == "29999.99"
    assert sql_literal(1e-05) == "0.00001"
    assert sql_literal(True) == "true"


def test_condition_sql_of_the_default_rules():
    rulebook = load_rulebook()
    assert condition_sql(rulebook.rule("tardia_mype").condition) == (
        "((dpd >= 31 and dpd <= 90 and credit_type in ('microempresa', 'pequena_empresa')))"[1:-1])
    assert condition_sql(rulebook.rule("demanda").condition) == "(dpd > 120 and balance_pen >= 30000)"


def test_version_follows_the_file_bytes_and_compile_writes_only_on_change(tmp_path, project):
    path = write(tmp_path, DEFAULT_TEXT)
    first = compile_rulebook(path, project)
    target = project / GENERATED_MACRO
    stamp = target.stat().st_mtime_ns
    assert compile_rulebook(path, project).version == first.version
    assert target.stat().st_mtime_ns == stamp, "unchanged rulebook must not rewrite the macro file"

    write(tmp_path, DEFAULT_TEXT + "\n# a comment only\n")
    commented = compile_rulebook(path, project)
    assert commented.version != first.version and commented.version.startswith("v1-")

    write(tmp_path, replace_once("and balance_pen >= 10000\n", "and balance_pen >= 15000\n"))
    raised = compile_rulebook(path, project)
    assert raised.version not in (first.version, commented.version)
    macros = target.read_text(encoding="utf-8")
    assert f"'{raised.version}'" in macros and "balance_pen >= 15000" in macros
    assert "balance_pen >= 10000" not in macros


def test_a_refused_rulebook_leaves_the_generated_macros_alone(tmp_path, project):
    path = write(tmp_path, DEFAULT_TEXT)
    compile_rulebook(path, project)
    before = (project / GENERATED_MACRO).read_text(encoding="utf-8")
    write(tmp_path, replace_once("condition: dpd > 120\n", "condition: dpd > 120; select 1\n"))
    with pytest.raises(RulebookError):
        compile_rulebook(path, project)
    assert (project / GENERATED_MACRO).read_text(encoding="utf-8") == before


def test_reason_of_a_disjunction_uses_the_branch_that_holds(tmp_path, project):
    text = replace_once("condition: dpd > 120\n",
                        "condition: dpd > 120 or (sbs_category == 'PER' and balance_pen < 500)\n")
    rulebook = load_rulebook(write(tmp_path, text), dbt_project_dir=project)
    macros = render_macros(rulebook)
    reason = macro_body(macros, "rulebook_reason")
    branch = reason[reason.index("when 'agencia_externa'"):reason.index("when 'prejudicial'")]
    assert "when (dpd > 120) then" in branch
    assert "when (sbs_category = 'PER' and balance_pen < 500) then" in branch
    assert "' < 500'" in branch
