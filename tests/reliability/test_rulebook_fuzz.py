"""Rulebook abuse, property-based (the named cases live in tests/transform/test_rulebook.py):
any condition text an analyst -- or an attacker -- writes either loads and compiles to SQL
that reaches only feature columns, or is refused with a RulebookError naming file, line and
rule. Never another exception, never SQL outside the features."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.config import RULEBOOK_PATH
from orchestration.transform.rulebook import FEATURE_KINDS, RulebookError, condition_sql, load_rulebook

DEFAULT = RULEBOOK_PATH.read_text(encoding="utf-8")
TOKENS = [*FEATURE_KINDS, "and", "or", "not", "in", "is", "None", "==", "!=", "<", ">=", "(", ")", ",", "1",
          "30000", "-1", "1e999", "'microempresa'", "'castigado'", "';'", "; drop table x", "--", "/*", "*/",
          "#", "abs(", "__import__", "select", "*", "+", "{{", "}}", "\\", "lambda", ":", "[0]", ".real",
          "union select 1", "\"", "'", "OR 1=1", "raw.customers", "full_name", "phone", "customer_id"]
SQL_WORDS = {"case", "when", "then", "else", "end", "and", "or", "not", "in", "is", "null", "true", "false"}


def identifiers(sql: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'(?:[^']|'')*'", "''", sql)))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                                     HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12) | st.lists(st.text(max_size=30), max_size=2))
def test_any_condition_is_refused_by_name_or_reaches_only_features(tmp_path, words):
    condition = " ".join(words)
    quoted = "'" + condition.replace("'", "''") + "'"
    assert DEFAULT.count("condition: dpd > 120\n") == 1
    path = tmp_path / "rulebook.yml"
    path.write_text(DEFAULT.replace("condition: dpd > 120\n", f"condition: {quoted}\n"), encoding="utf-8")
    try:
        rulebook = load_rulebook(path)
    except RulebookError as refused:
        message = str(refused)
        assert message.startswith(f"{path}:"), message
        assert "\n" not in message.strip(), message
        return
    for rule in rulebook.rules:
        assert identifiers(condition_sql(rule.condition)) - SQL_WORDS <= set(FEATURE_KINDS), rule
