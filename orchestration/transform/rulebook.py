"""The rulebook: load ``dbt_project/rulebook.yml``, refuse anything unsafe, compile it to dbt.

An analyst edits the rulebook (ordered rules, first match wins); this module turns it into
the dbt macros the segment model calls (``macros/generated/rulebook.sql``). Conditions are
parsed with Python's ``ast`` and only a small whitelist survives: ``and``/``or``/``not``,
comparisons (including ranges such as ``31 <= dpd <= 90``), ``in``/``not in`` lists,
``is None`` and constants, over the feature columns of ``int_loan_features``. Everything
the generated SQL references is either one of those column names (taken from
:data:`FEATURE_KINDS`, never from the file) or a quoted literal, so the file cannot reach
other tables, run functions or inject Jinja.

The same parsed conditions are evaluated in Python by ``explain`` (SQL three-valued logic),
so the explanation and the SQL cannot drift apart.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import math
import re
import tokenize
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

import yaml

from orchestration.config import DBT_PROJECT_DIR, RULEBOOK_PATH

GENERATED_MACRO = Path("macros") / "generated" / "rulebook.sql"
STRATEGIES_SEED = Path("seeds") / "strategies.csv"

# Size limits: a rulebook is a page of business rules, not a data file.
MAX_FILE_BYTES = 256 * 1024
MAX_RULES = 500
MAX_CONDITION_CHARS = 2000
MAX_CONDITION_NODES = 300
MAX_LIST_ITEMS = 200
MAX_TEXT_CHARS = 300
MAX_ABS_NUMBER = 10**15

# The columns of int_loan_features a condition may use (docs/design.md), and how each is
# compared and shown in a reason. Keys (as_of_date, loan_id) and customer_id are not features.
FEATURE_KINDS: dict[str, str] = {
    "dpd": "integer",
    "balance_pen": "money",
    "credit_type": "text",
    "accounting_status": "text",
    "max_dpd_12m": "integer",
    "delinquency_episodes_12m": "integer",
    "paid_90d_pen": "money",
    "days_since_last_payment": "integer",
    "sbs_category": "text",
    "sbs_category_aligned": "text",
    "ifrs9_stage": "integer",
    "currency": "text",
    "product_code": "text",
    "department_code": "text",
    "guarantee_type": "text",
    "dpd_bucket": "text",
    "provision_rate": "rate",
    "provision_pen": "money",
    "digital_contact_consent": "boolean",
}
NUMERIC_KINDS = {"integer", "money", "rate"}

# Closed vocabularies of the contract: a typo such as 'castigdo' would silently never match,
# so it is refused instead.
FEATURE_DOMAINS: dict[str, tuple[str, ...]] = {
    "credit_type": ("corporativo", "gran_empresa", "mediana_empresa", "pequena_empresa",
                    "microempresa", "consumo_revolvente", "consumo_no_revolvente", "hipotecario"),
    "accounting_status": ("vigente", "reprogramado", "refinanciado", "vencido", "judicial", "castigado"),
    "sbs_category": ("NOR", "CPP", "DEF", "DUD", "PER"),
    "sbs_category_aligned": ("NOR", "CPP", "DEF", "DUD", "PER"),
    "currency": ("PEN", "USD"),
    "guarantee_type": ("ninguna", "preferida", "preferida_muy_rapida_realizacion"),
    "dpd_bucket": ("0", "1-8", "9-30", "31-60", "61-90", "91-120", "121-180", "181-365", ">365"),
}

# Segment codes the marts use for themselves (segment_migration).
RESERVED_SEGMENTS = {"NUEVO", "SALIDA"}
CATCH_ALL_WORDS = {"true", "always"}

_CODE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_LABEL_RE = re.compile(r"^[\w.\-]{1,40}$")
# Free text (labels, descriptions, names) ends up inside SQL string literals and Jinja string
# literals of the generated macro file: braces could open Jinja, backslashes and double
# quotes would escape those literals.
_UNSAFE_TEXT_RE = re.compile(r"[{}\\\"\x00-\x1f\x7f]")
# String constants in conditions compare with codes such as 'pequena_empresa' or 'MYPE_CAPITAL'.
_STRING_CONSTANT_RE = re.compile(r"^[\w .,/&+()'\-]{0,100}$")

_TOP_KEYS = {"version_label", "features", "rules"}
_RULE_KEYS = {"id", "description", "condition", "segment_code", "segment_name", "strategy_code"}


class RulebookError(ValueError):
    """The rulebook file is refused; the message names file, line, column, rule and what was expected."""


# --------------------------------------------------------------------------------------------
# Parsed conditions (an immutable tree the compiler, the reason builder and explain share)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    name: str


@dataclass(frozen=True)
class Const:
    value: Any  # str, int, float, bool, None, or a tuple of those (for in / not in)


Operand = Union[Feature, Const]


@dataclass(frozen=True)
class Cmp:
    """One atomic comparison; when a feature is involved it is on the left."""

    left: Operand
    op: str  # == != < <= > >= in "not in" is "is not"
    right: Operand


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Always:
    pass


Condition = Union[Cmp, And, Or, Always]

_NEGATED_OP = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", "<=": ">", ">": "<=",
               "in": "not in", "not in": "in", "is": "is not", "is not": "is"}
_FLIPPED_OP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_AST_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


def both(items) -> Condition:
    """Conjunction, flattened: (a and b) and c == a and b and c."""
    flat = tuple(x for i in items for x in (i.items if isinstance(i, And) else (i,)))
    return flat[0] if len(flat) == 1 else And(flat)


def either(items) -> Condition:
    """Disjunction, flattened."""
    flat = tuple(x for i in items for x in (i.items if isinstance(i, Or) else (i,)))
    return flat[0] if len(flat) == 1 else Or(flat)


def negate(cond: Condition) -> Condition:
    """Negation pushed down to the comparisons (valid in SQL's three-valued logic too)."""
    if isinstance(cond, Cmp):
        return Cmp(cond.left, _NEGATED_OP[cond.op], cond.right)
    if isinstance(cond, And):
        return either(negate(i) for i in cond.items)
    if isinstance(cond, Or):
        return both(negate(i) for i in cond.items)
    raise TypeError("a catch-all cannot be negated")


def atoms(cond: Condition) -> list[Cmp]:
    """The atomic comparisons of a condition, in reading order."""
    if isinstance(cond, Cmp):
        return [cond]
    if isinstance(cond, (And, Or)):
        return [a for item in cond.items for a in atoms(item)]
    return []


def features_used(cond: Condition) -> set[str]:
    return {o.name for a in atoms(cond) for o in (a.left, a.right) if isinstance(o, Feature)}


# --------------------------------------------------------------------------------------------
# The rulebook
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    position: int  # 1-based order: first match wins
    description: str
    condition_text: str  # as the analyst wrote it
    condition: Condition
    segment_code: str
    segment_name: str
    strategy_code: str
    line: int

    @property
    def is_catch_all(self) -> bool:
        return isinstance(self.condition, Always)

    @property
    def canonical_condition(self) -> str:
        return render_condition(self.condition)


@dataclass(frozen=True)
class Rulebook:
    path: Path
    version_label: str
    sha256: str
    features: dict[str, str]  # feature -> Spanish label
    rules: tuple[Rule, ...]
    strategies: frozenset[str] = field(default_factory=frozenset)

    @property
    def version(self) -> str:
        """What every assignment records: the analyst's label plus a hash of the file bytes."""
        return f"{self.version_label}-{self.sha256[:12]}"

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def first_match(self, values: dict[str, Any]) -> Rule:
        for rule in self.rules:
            if evaluate(rule.condition, values) is True:
                return rule
        raise AssertionError("the catch-all rule always matches")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
class _Where:
    """Formats 'file:line:column: rule ... :' prefixes for RulebookError."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, mark, message: str, rule: str | None = None, position: int | None = None,
              line: int | None = None, column: int | None = None) -> RulebookError:
        if mark is not None:
            line = mark.line + 1 if line is None else line
            column = mark.column + 1 if column is None else column
        prefix = f"{self.path}:{line or 1}:{column or 1}:"
        if rule:
            prefix += f" rule '{rule}' (#{position}):"
        elif position:
            prefix += f" rule #{position}:"
        return RulebookError(f"{prefix} {message}")


def _compose(text: str, where: _Where) -> yaml.Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise where.error(mark, f"not valid YAML: {exc.problem or exc.context}; expected the layout "
                                "of dbt_project/rulebook.yml") from None
    except yaml.YAMLError as exc:  # unmarked, e.g. a control character (ReaderError): one line
        raise where.error(None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    if node is None:
        raise where.error(None, "the file is empty; expected version_label, features and rules")
    return node


def _check_no_aliases(node: yaml.Node, where: _Where, seen: set[int]) -> None:
    """Anchors/aliases would let a small file expand enormously; a rulebook has no use for them."""
    if id(node) in seen:
        raise where.error(node.start_mark, "YAML anchors and aliases are not allowed; write each value out")
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _check_no_aliases(key, where, seen)
            _check_no_aliases(value, where, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_no_aliases(item, where, seen)


def _scalar(node: yaml.Node, where: _Where, what: str, **ctx) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise where.error(node.start_mark, f"{what} must be a single value, not a list or mapping", **ctx)
    return yaml.SafeLoader("").construct_object(node)


def _mapping(node: yaml.Node, where: _Where, what: str, allowed: set[str], **ctx) -> dict[str, tuple[Any, yaml.Node]]:
    """A mapping as {key: (value_node, key_node)}; refuses duplicate and unknown keys."""
    if not isinstance(node, yaml.MappingNode):
        raise where.error(node.start_mark, f"{what} must be a mapping of keys to values", **ctx)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, where, "a key", **ctx)
        if not isinstance(key, str):
            raise where.error(key_node.start_mark, f"key {key!r} in {what} must be text", **ctx)
        if key in out:
            raise where.error(key_node.start_mark, f"duplicate key '{key}' in {what}", **ctx)
        if allowed and key not in allowed:
            raise where.error(key_node.start_mark,
                              f"unknown key '{key}' in {what}; expected one of {', '.join(sorted(allowed))}", **ctx)
        out[key] = (value_node, key_node)
    return out


def _peek(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of `key` in a mapping node (first occurrence), without validating."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None


def _text(node: yaml.Node, where: _Where, what: str, **ctx) -> str:
    value = _scalar(node, where, what, **ctx)
    if not isinstance(value, str) or not value.strip():
        raise where.error(node.start_mark, f"{what} must be a non-empty text", **ctx)
    if len(value) > MAX_TEXT_CHARS:
        raise where.error(node.start_mark, f"{what} is longer than {MAX_TEXT_CHARS} characters", **ctx)
    bad = _UNSAFE_TEXT_RE.search(value)
    if bad:
        raise where.error(node.start_mark, f"{what} contains the character {bad.group()!r}; "
                                           "expected plain text without braces, backslashes, double quotes or control characters", **ctx)
    return value.strip()


def _code(node: yaml.Node, where: _Where, what: str, **ctx) -> str:
    value = _scalar(node, where, what, **ctx)
    if not isinstance(value, str) or not _CODE_RE.match(value):
        raise where.error(node.start_mark, f"{what} {value!r} is not a valid code; expected a letter followed by "
                                           "letters, digits or underscores (at most 63)", **ctx)
    return value


def read_strategy_codes(dbt_project_dir: Path = DBT_PROJECT_DIR) -> frozenset[str]:
    path = Path(dbt_project_dir) / STRATEGIES_SEED
    with open(path, encoding="utf-8", newline="") as fh:
        return frozenset(row["strategy_code"] for row in csv.DictReader(fh))


def load_rulebook(rulebook_path: Path = RULEBOOK_PATH, strategies: frozenset[str] | None = None,
                  dbt_project_dir: Path = DBT_PROJECT_DIR) -> Rulebook:
    """Read and validate the rulebook; raise :class:`RulebookError` on the first problem."""
    path = Path(rulebook_path)
    where = _Where(path)
    if not path.is_file():
        raise RulebookError(f"{path}:1:1: rulebook file not found; expected the analyst's rulebook.yml")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise where.error(None, f"file is {size} bytes; a rulebook may have at most {MAX_FILE_BYTES} bytes")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise where.error(None, f"not UTF-8 (byte {exc.start}); save the rulebook as UTF-8") from None
    if strategies is None:
        strategies = read_strategy_codes(dbt_project_dir)

    root = _compose(text, where)
    _check_no_aliases(root, where, set())
    top = _mapping(root, where, "the rulebook", _TOP_KEYS)
    for key in sorted(_TOP_KEYS - top.keys()):
        raise where.error(root.start_mark, f"missing key '{key}'; expected version_label, features and rules")

    label_node = top["version_label"][0]
    version_label = _scalar(label_node, where, "version_label")
    if not isinstance(version_label, (str, int, float)) or not _LABEL_RE.match(str(version_label)):
        raise where.error(label_node.start_mark, "version_label must be a short label such as v1 or 2026-03 "
                                                 "(letters, digits, '.', '-', '_')")

    features: dict[str, str] = {}
    for name, (value_node, key_node) in _mapping(top["features"][0], where, "features", set()).items():
        if name not in FEATURE_KINDS:
            raise where.error(key_node.start_mark, f"unknown feature '{name}'; expected one of the columns of "
                                                   f"int_loan_features: {', '.join(FEATURE_KINDS)}")
        features[name] = _text(value_node, where, f"the label of feature '{name}'")

    rules_node = top["rules"][0]
    if not isinstance(rules_node, yaml.SequenceNode) or not rules_node.value:
        raise where.error(rules_node.start_mark, "rules must be a non-empty list of rules")
    if len(rules_node.value) > MAX_RULES:
        raise where.error(rules_node.start_mark, f"{len(rules_node.value)} rules; at most {MAX_RULES} are allowed")

    rules: list[Rule] = []
    seen_ids: dict[str, int] = {}
    segments: dict[str, tuple[str, str, str]] = {}
    for position, rule_node in enumerate(rules_node.value, start=1):
        ctx: dict[str, Any] = {"position": position}
        id_node = _peek(rule_node, "id")
        if id_node is not None:  # known first, so every later message names the rule
            rule_id = _code(id_node, where, "the rule id", **ctx)
            ctx["rule"] = rule_id
        fields = _mapping(rule_node, where, "the rule", _RULE_KEYS, **ctx)
        for key in ("id", "description", "condition", "segment_code", "segment_name", "strategy_code"):
            if key not in fields:
                raise where.error(rule_node.start_mark, f"missing key '{key}'", **ctx)
        if rule_id in seen_ids:
            raise where.error(fields["id"][0].start_mark,
                              f"duplicate rule id; rule #{seen_ids[rule_id]} already uses '{rule_id}'", **ctx)
        seen_ids[rule_id] = position

        description = _text(fields["description"][0], where, "description", **ctx)
        segment_code = _code(fields["segment_code"][0], where, "segment_code", **ctx)
        if segment_code in RESERVED_SEGMENTS:
            raise where.error(fields["segment_code"][0].start_mark,
                              f"segment_code '{segment_code}' is reserved for segment_migration", **ctx)
        segment_name = _text(fields["segment_name"][0], where, "segment_name", **ctx)
        strategy_code = _code(fields["strategy_code"][0], where, "strategy_code", **ctx)
        if strategy_code not in strategies:
            raise where.error(fields["strategy_code"][0].start_mark,
                              f"strategy_code '{strategy_code}' is not in the strategy catalogue "
                              f"(seeds/strategies.csv); expected one of {', '.join(sorted(strategies))}", **ctx)
        previous = segments.get(segment_code)
        if previous and previous[:2] != (segment_name, strategy_code):
            raise where.error(fields["segment_code"][0].start_mark,
                              f"segment '{segment_code}' already has name '{previous[0]}' and strategy "
                              f"'{previous[1]}' in rule '{previous[2]}'; one segment, one name and strategy", **ctx)
        segments.setdefault(segment_code, (segment_name, strategy_code, rule_id))

        cond_node = fields["condition"][0]
        condition_text, condition = _parse_condition(cond_node, where, features, ctx)
        rules.append(Rule(rule_id, position, description, condition_text, condition, segment_code,
                          segment_name, strategy_code, cond_node.start_mark.line + 1))

    for rule in rules[:-1]:
        if rule.is_catch_all:
            raise where.error(None, "a catch-all condition (true) must be the last rule; the rules after it "
                                    "could never match", rule=rule.id, position=rule.position, line=rule.line)
    if not rules[-1].is_catch_all:
        last = rules[-1]
        raise where.error(None, "the last rule must be the catch-all (condition: true) so every loan gets a "
                                "segment", rule=last.id, position=last.position, line=last.line)

    return Rulebook(path=path, version_label=str(version_label), sha256=hashlib.sha256(raw).hexdigest(),
                    features=features, rules=tuple(rules), strategies=frozenset(strategies))


# --------------------------------------------------------------------------------------------
# Condition parsing
# --------------------------------------------------------------------------------------------
class _ConditionError(Exception):
    def __init__(self, message: str, node: ast.AST | None = None, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = getattr(node, "lineno", 1) if node is not None else 1
        self.col = getattr(node, "col_offset", 0) if node is not None else (offset or 0)


_EXPECTED = ("expected comparisons of features with numbers or quoted texts joined by and/or/not, "
             "e.g. 31 <= dpd <= 90 and credit_type in ('microempresa', 'pequena_empresa')")


def _parse_condition(node: yaml.Node, where: _Where, features: dict[str, str], ctx: dict) -> tuple[str, Condition]:
    value = _scalar(node, where, "condition", **ctx)
    if value is True or (isinstance(value, str) and value.strip().lower() in CATCH_ALL_WORDS):
        return "true", Always()
    if not isinstance(value, str) or not value.strip():
        raise where.error(node.start_mark, f"condition must be an expression or true; {_EXPECTED}", **ctx)
    text = value.strip()
    try:
        if len(text) > MAX_CONDITION_CHARS:
            raise _ConditionError(f"condition is longer than {MAX_CONDITION_CHARS} characters")
        _check_tokens(text)
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise _ConditionError(f"cannot read the condition ({exc.msg}); {_EXPECTED}",
                                  offset=(exc.offset or 1) - 1) from None
        if sum(1 for _ in ast.walk(tree)) > MAX_CONDITION_NODES:
            raise _ConditionError(f"condition is too complex (more than {MAX_CONDITION_NODES} parts)")
        condition = _Builder(features).build(tree.body)
    except _ConditionError as exc:
        # Point at the offending part: line and column in the file for one-line conditions.
        line = node.start_mark.line + exc.lineno
        column = node.start_mark.column + 1 + exc.col + (1 if node.style in ("'", '"') else 0)
        if node.style in ("|", ">") or exc.lineno > 1:
            line, column = node.start_mark.line + 1 + exc.lineno, exc.col + 1
        raise where.error(None, f"{exc.message}", line=line, column=column, **ctx) from None
    return text, condition


def _check_tokens(text: str) -> None:
    """Refuse statement separators and comments with a clear message before parsing."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                raise _ConditionError("comments ('#') are not allowed in a condition", offset=tok.start[1])
            if tok.type == tokenize.OP and tok.string == ";":
                raise _ConditionError("';' is not allowed: a condition is one expression", offset=tok.start[1])
            if tok.type == tokenize.OP and tok.string == "=":
                raise _ConditionError("'=' is assignment; use '==' to compare", offset=tok.start[1])
    except tokenize.TokenError as exc:
        raise _ConditionError(f"cannot read the condition ({exc.args[0]}); {_EXPECTED}") from None
    except SyntaxError as exc:  # tokenize raises it for stray characters
        raise _ConditionError(f"cannot read the condition ({exc.msg}); {_EXPECTED}") from None


class _Builder:
    """AST -> Condition, accepting only the whitelisted constructs."""

    def __init__(self, features: dict[str, str]):
        self.features = features

    def build(self, node: ast.AST) -> Condition:
        if isinstance(node, ast.BoolOp):
            items = [self.build(v) for v in node.values]
            return both(items) if isinstance(node.op, ast.And) else either(items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return negate(self.build(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name) and node.id in FEATURE_KINDS and FEATURE_KINDS[node.id] == "boolean":
            return Cmp(self.feature(node), "==", Const(True))
        if isinstance(node, (ast.Name, ast.Constant)):
            raise _ConditionError(f"'{ast.unparse(node)}' alone is not a condition; compare it, e.g. dpd > 0", node)
        raise self.refuse(node)

    def refuse(self, node: ast.AST) -> _ConditionError:
        kind = {ast.Call: "function calls", ast.Attribute: "attribute access ('.')", ast.Subscript: "indexing ('[...]')",
                ast.BinOp: "arithmetic and string concatenation", ast.Lambda: "lambdas",
                ast.IfExp: "if/else expressions", ast.Set: "sets ('{...}'); use a list in parentheses",
                ast.Dict: "dicts", ast.JoinedStr: "f-strings", ast.NamedExpr: "assignments",
                ast.Starred: "'*'", ast.Await: "await"}.get(type(node), f"'{type(node).__name__}' expressions")
        return _ConditionError(f"{kind} are not allowed in a condition; {_EXPECTED}", node)

    def feature(self, node: ast.Name) -> Feature:
        if node.id not in FEATURE_KINDS:
            raise _ConditionError(f"unknown name '{node.id}'; expected one of the features: "
                                  f"{', '.join(self.features) or '(none declared)'}", node)
        if node.id not in self.features:
            raise _ConditionError(f"feature '{node.id}' has no label under 'features:'; add one "
                                  "(it is used in the reason)", node)
        return Feature(node.id)

    def operand(self, node: ast.AST) -> Operand:
        if isinstance(node, ast.Name):
            if node.id in ("True", "true"):
                return Const(True)
            if node.id in ("False", "false"):
                return Const(False)
            return self.feature(node)
        if isinstance(node, ast.Constant):
            return Const(self.constant(node.value, node))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = self.constant(node.operand.value, node)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _ConditionError("'-' applies only to numbers", node)
            return Const(-value)
        if isinstance(node, (ast.Tuple, ast.List)):
            if not node.elts:
                raise _ConditionError("an empty list matches nothing; list at least one value", node)
            if len(node.elts) > MAX_LIST_ITEMS:
                raise _ConditionError(f"a list may have at most {MAX_LIST_ITEMS} values", node)
            values = []
            for elt in node.elts:
                item = self.operand(elt)
                if not isinstance(item, Const) or isinstance(item.value, tuple) or item.value is None:
                    raise _ConditionError("a list may hold only numbers or quoted texts", elt)
                values.append(item.value)
            return Const(tuple(values))
        raise self.refuse(node)

    def constant(self, value: Any, node: ast.AST) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
                raise _ConditionError(f"number {ast.unparse(node)} is out of range (at most {MAX_ABS_NUMBER:,})", node)
            return value
        if isinstance(value, str):
            if not _STRING_CONSTANT_RE.match(value):
                raise _ConditionError(f"text {value[:40]!r} may hold only letters, digits, spaces and . , / & + ( ) ' - _ "
                                      "(at most 100 characters)", node)
            return value
        raise _ConditionError(f"constant {ast.unparse(node)} is not a number, a quoted text, True, False or None", node)

    def compare(self, node: ast.Compare) -> Condition:
        parts: list[Cmp] = []
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators):
            op_text = _AST_OPS.get(type(op))
            if op_text is None:  # pragma: no cover - every ast comparison op is mapped
                raise self.refuse(node)
            parts.append(self.pair(self.operand(left_node), op_text, self.operand(right_node), node))
            left_node = right_node
        return both(parts)

    def pair(self, left: Operand, op: str, right: Operand, node: ast.AST) -> Cmp:
        if isinstance(left, Const) and isinstance(right, Feature) and op in _FLIPPED_OP:
            left, op, right = right, _FLIPPED_OP[op], left
        if not isinstance(left, Feature):
            raise _ConditionError("each comparison needs a feature on one side (e.g. dpd > 120)", node)
        kind = FEATURE_KINDS[left.name]
        shown = ast.unparse(node)
        if op in ("is", "is not"):
            if not (isinstance(right, Const) and right.value is None):
                raise _ConditionError(f"'{op}' is only for None (missing value): {left.name} {op} None", node)
            return Cmp(left, op, right)
        if isinstance(right, Const) and right.value is None:
            raise _ConditionError(f"compare with None using 'is None' / 'is not None' in '{shown}'", node)
        if op in ("in", "not in"):
            if not (isinstance(right, Const) and isinstance(right.value, tuple)):
                raise _ConditionError(f"'{op}' needs a list of values in parentheses, e.g. ('a', 'b'), in '{shown}'", node)
            for item in right.value:
                self.check_value(left.name, kind, item, node)
            return Cmp(left, op, right)
        if isinstance(right, Const) and isinstance(right.value, tuple):
            raise _ConditionError(f"a list can only follow 'in' / 'not in' in '{shown}'", node)
        if op in ("<", "<=", ">", ">=") and kind not in NUMERIC_KINDS:
            raise _ConditionError(f"'{left.name}' is {kind}: it can be compared only with ==, != or in, not '{op}'", node)
        if isinstance(right, Feature):
            other = FEATURE_KINDS[right.name]
            if (kind in NUMERIC_KINDS) != (other in NUMERIC_KINDS) or (kind not in NUMERIC_KINDS and kind != other):
                raise _ConditionError(f"'{left.name}' ({kind}) cannot be compared with '{right.name}' ({other})", node)
            return Cmp(left, op, right)
        self.check_value(left.name, kind, right.value, node)
        return Cmp(left, op, right)

    def check_value(self, name: str, kind: str, value: Any, node: ast.AST) -> None:
        if kind in NUMERIC_KINDS:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            expected = "a number"
        elif kind == "boolean":
            ok, expected = isinstance(value, bool), "True or False"
        else:
            ok, expected = isinstance(value, str), "a quoted text"
        if not ok:
            raise _ConditionError(f"'{name}' is {kind}: expected {expected}, got {value!r}", node)
        domain = FEATURE_DOMAINS.get(name)
        if domain and value not in domain:
            raise _ConditionError(f"'{value}' is not a value of {name}; expected one of {', '.join(domain)}", node)


# --------------------------------------------------------------------------------------------
# Evaluation in Python (explain) — SQL three-valued logic: None means unknown
# --------------------------------------------------------------------------------------------
def _value(operand: Operand, values: dict[str, Any]) -> Any:
    return values.get(operand.name) if isinstance(operand, Feature) else operand.value


def _comparable(value: Any) -> Any:
    """Numbers as Decimal so 0.05 (a float constant) equals DECIMAL 0.050000 from DuckDB."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def evaluate_atom(atom: Cmp, values: dict[str, Any]) -> bool | None:
    """One comparison with SQL semantics: a missing value makes it unknown (None)."""
    left = _value(atom.left, values)
    if atom.op == "is":
        return left is None
    if atom.op == "is not":
        return left is not None
    right = _value(atom.right, values)
    if left is None or right is None:
        return None
    left = _comparable(left)
    if atom.op in ("in", "not in"):
        return (left in [_comparable(v) for v in right]) == (atom.op == "in")
    right = _comparable(right)
    return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[atom.op]


def evaluate(cond: Condition, values: dict[str, Any]) -> bool | None:
    if isinstance(cond, Always):
        return True
    if isinstance(cond, Cmp):
        return evaluate_atom(cond, values)
    results = [evaluate(i, values) for i in cond.items]
    if isinstance(cond, And):
        return False if False in results else (None if None in results else True)
    return True if True in results else (None if None in results else False)


# --------------------------------------------------------------------------------------------
# Rendering: canonical text, SQL, Spanish reason
# --------------------------------------------------------------------------------------------
def _python_literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_python_literal(v) for v in value) + ")"
    if isinstance(value, float):
        return _plain_number(value)
    return repr(value)  # Python quoting: 'microempresa', "O'Brien", True


def render_condition(cond: Condition) -> str:
    """Canonical, readable form of a parsed condition (negations pushed to the comparisons)."""
    if isinstance(cond, Always):
        return "true"
    if isinstance(cond, Cmp):
        return _render_atom(cond)
    if isinstance(cond, Or):
        return " or ".join(f"({render_condition(i)})" if isinstance(i, And) else render_condition(i)
                           for i in cond.items)
    pending, out = list(cond.items), []
    while pending:  # a >= lo followed by a <= hi reads as lo <= a <= hi
        item = pending.pop(0)
        if (isinstance(item, Cmp) and item.op == ">=" and isinstance(item.right, Const) and pending
                and isinstance(pending[0], Cmp) and pending[0].op == "<=" and pending[0].left == item.left
                and isinstance(pending[0].right, Const)):
            upper = pending.pop(0)
            out.append(f"{_python_literal(item.right.value)} <= {item.left.name} <= {_python_literal(upper.right.value)}")
        else:
            out.append(f"({render_condition(item)})" if isinstance(item, Or) else render_condition(item))
    return " and ".join(out)


def _render_atom(cond: Cmp) -> str:
    left = cond.left.name if isinstance(cond.left, Feature) else _python_literal(cond.left.value)
    right = cond.right.name if isinstance(cond.right, Feature) else _python_literal(cond.right.value)
    return f"{left} {cond.op} {right}"


def _plain_number(value: int | float) -> str:
    """Digits without an exponent (1e-05 -> 0.00001), valid in every SQL dialect."""
    return format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)


def sql_literal(value: Any) -> str:
    """A SQL literal for a validated constant; texts are single-quoted with quotes doubled."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _plain_number(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"not a SQL constant: {value!r}")


_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _sql_operand(operand: Operand) -> str:
    if isinstance(operand, Feature):
        if operand.name not in FEATURE_KINDS:  # defence in depth: names come from the whitelist
            raise RulebookError(f"internal: unknown feature {operand.name!r}")
        return operand.name
    return sql_literal(operand.value)


def condition_sql(cond: Condition) -> str:
    if isinstance(cond, Always):
        return "true"
    if isinstance(cond, Cmp):
        left = _sql_operand(cond.left)
        if cond.op == "is":
            return f"{left} is null"
        if cond.op == "is not":
            return f"{left} is not null"
        if cond.op in ("in", "not in"):
            return f"{left} {cond.op} (" + ", ".join(sql_literal(v) for v in cond.right.value) + ")"
        return f"{left} {_SQL_OPS[cond.op]} {_sql_operand(cond.right)}"
    joiner = " and " if isinstance(cond, And) else " or "
    return "(" + joiner.join(condition_sql(i) for i in cond.items) + ")"


def format_constant(kind: str, value: Any) -> str:
    """Constants as a Spanish-reading analyst expects them: 10,000 / 29,999.99 / 5% / sí."""
    if isinstance(value, tuple):
        return "[" + ", ".join(format_constant(kind, v) for v in value) + "]"
    if isinstance(value, bool):
        return "sí" if value else "no"
    if kind == "rate" and isinstance(value, (int, float)):
        pct = Decimal(repr(value)) * 100
        return f"{pct.normalize():f}%"
    if kind == "money" and isinstance(value, (int, float)):
        return f"{value:,.2f}".removesuffix(".00")
    if isinstance(value, float):
        return _plain_number(value)
    return str(value)


# Reason parts: ("text", s) is literal text, ("value", feature) is the loan's formatted value.
Part = tuple[str, str]


def _atom_parts(atom: Cmp, labels: dict[str, str]) -> list[Part]:
    feature = atom.left.name
    label = labels[feature]
    kind = FEATURE_KINDS[feature]
    if atom.op == "is":
        return [("text", f"{label} sin dato")]
    parts: list[Part] = [("text", f"{label} "), ("value", feature)]
    if atom.op == "is not" or atom.op == "==":
        return parts
    if isinstance(atom.right, Feature):
        return parts + [("text", f" {atom.op} {labels[atom.right.name]} "), ("value", atom.right.name)]
    constant = format_constant(kind, atom.right.value)
    word = {"in": "en", "not in": "fuera de", "!=": "≠"}.get(atom.op, atom.op)
    return parts + [("text", f" {word} {constant}")]


def _and_parts(items: tuple[Cmp, ...], labels: dict[str, str]) -> list[Part]:
    """Reason of a conjunction of comparisons, '; '-separated; `x >= lo` and `x <= hi` on one
    feature read as 'x en lo–hi'."""
    pending = list(items)
    out: list[Part] = []
    while pending:
        atom = pending.pop(0)
        upper = None
        if atom.op == ">=" and isinstance(atom.right, Const):
            upper = next((o for o in pending if o.op == "<=" and o.left == atom.left and isinstance(o.right, Const)), None)
        if out:
            out.append(("text", "; "))
        if upper is not None:
            pending.remove(upper)
            feature = atom.left.name
            kind = FEATURE_KINDS[feature]
            out += [("text", f"{labels[feature]} "), ("value", feature),
                    ("text", f" en {format_constant(kind, atom.right.value)}–{format_constant(kind, upper.right.value)}")]
        else:
            out += _atom_parts(atom, labels)
    return out


MAX_REASON_ALTERNATIVES = 32


def alternatives(cond: Condition) -> list[list[Cmp]] | None:
    """The condition as a disjunction of conjunctions (each a way it can hold); None if too many."""
    if isinstance(cond, Always):
        return [[]]
    if isinstance(cond, Cmp):
        return [[cond]]
    subs = [alternatives(i) for i in cond.items]
    if any(s is None for s in subs):
        return None
    if isinstance(cond, Or):
        out = [alt for s in subs for alt in s]
    else:
        out = [[]]
        for s in subs:
            out = [left + right for left in out for right in s]
            if len(out) > MAX_REASON_ALTERNATIVES:
                return None
    return out if len(out) <= MAX_REASON_ALTERNATIVES else None


_FORMAT_MACRO = {"integer": "rulebook_format_integer", "money": "rulebook_format_money",
                 "rate": "rulebook_format_rate", "text": "rulebook_format_text",
                 "boolean": "rulebook_format_boolean"}


def _jinja_string(sql_text: str) -> str:
    # Free text was checked for braces, backslashes and double quotes at load; check again
    # here because this text is written into a Jinja template.
    if _UNSAFE_TEXT_RE.search(sql_text):
        raise RulebookError(f"internal: unsafe text reached the macro file: {sql_text!r}")
    return '"' + sql_text + '"'


def _parts_sql(parts: list[Part]) -> str:
    """A Jinja call to dbt.concat (portable) over SQL literals and formatted feature values."""
    merged: list[Part] = []
    for kind, text in parts:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + text)
        else:
            merged.append((kind, text))
    if len(merged) == 1 and merged[0][0] == "text":
        return _jinja_string(sql_literal(merged[0][1]))[1:-1]
    items = []
    for kind, text in merged:
        if kind == "text":
            items.append(_jinja_string(sql_literal(text)))
        else:
            items.append(f"{_FORMAT_MACRO[FEATURE_KINDS[text]]}('{text}')")
    return "{{ dbt.concat([" + ", ".join(items) + "]) }}"


def reason_sql(cond: Condition, labels: dict[str, str], fallback: str) -> str:
    """SQL for the reason of a rule that matched: the values that made its condition true.

    With `or`, the first way the condition holds explains the match (a CASE over the
    alternatives); a condition with too many alternatives falls back to the description.
    """
    if isinstance(cond, Always):
        return sql_literal(fallback)
    alts = alternatives(cond)
    if not alts:
        return sql_literal(fallback)
    if len(alts) == 1:
        return _parts_sql(_and_parts(tuple(alts[0]), labels))
    whens = "\n".join(f"            when {condition_sql(And(tuple(alt)))} then {_parts_sql(_and_parts(tuple(alt), labels))}"
                      for alt in alts)
    return f"case\n{whens}\n        end"


# --------------------------------------------------------------------------------------------
# Compiling to dbt macros
# --------------------------------------------------------------------------------------------
def render_macros(rulebook: Rulebook) -> str:
    """The content of macros/generated/rulebook.sql for this rulebook."""
    rules = rulebook.rules
    whens = "\n".join(f"    when {condition_sql(r.condition)} then {sql_literal(r.id)}" for r in rules[:-1])
    rule_id_case = f"case\n{whens}\n    else {sql_literal(rules[-1].id)}\nend" if whens else sql_literal(rules[-1].id)
    reasons = "\n".join(f"    when {sql_literal(r.id)} then {reason_sql(r.condition, rulebook.features, r.description)}"
                        for r in rules)
    rows = "\nunion all\n".join(
        "select {id} as rule_id, {pos} as rule_order, {seg} as segment_code, {name} as segment_name, "
        "{strat} as strategy_code, {desc} as rule_description, {cond} as rule_condition".format(
            id=sql_literal(r.id), pos=r.position, seg=sql_literal(r.segment_code), name=sql_literal(r.segment_name),
            strat=sql_literal(r.strategy_code), desc=sql_literal(r.description),
            cond=sql_literal(r.canonical_condition))
        for r in rules)
    return f"""{{#- GENERATED by orchestration/transform/rulebook.py from {rulebook.path.name} (version {rulebook.version}).
    Do not edit: edit the rulebook and run the pipeline (or `cartera prepare`) to regenerate. -#}}

{{% macro rulebook_version() -%}}
{sql_literal(rulebook.version)}
{{%- endmacro %}}

{{#- The id of the first rule whose condition holds, over the feature columns of int_loan_features. -#}}
{{% macro rulebook_rule_id() -%}}
{rule_id_case}
{{%- endmacro %}}

{{#- The Spanish reason of the matched rule, built from the values that matched. -#}}
{{% macro rulebook_reason(rule_id_column) -%}}
case {{{{ rule_id_column }}}}
{reasons}
end
{{%- endmacro %}}

{{#- One row per rule: order, segment, strategy, description and canonical condition. -#}}
{{% macro rulebook_rules() -%}}
{rows}
{{%- endmacro %}}
"""


def compile_rulebook(rulebook_path: Path = RULEBOOK_PATH, dbt_project_dir: Path = DBT_PROJECT_DIR) -> Rulebook:
    """Validate the rulebook and write the generated macro file when its content changed.

    Called by Dagster and the CLI before every dbt invocation. Writing only on change keeps
    dbt's partial parsing cheap and the file's mtime meaningful.
    """
    dbt_project_dir = Path(dbt_project_dir)
    rulebook = load_rulebook(rulebook_path, dbt_project_dir=dbt_project_dir)
    content = render_macros(rulebook)
    target = dbt_project_dir / GENERATED_MACRO
    if not target.exists() or target.read_text(encoding="utf-8") != content:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".sql.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(target)
    return rulebook
