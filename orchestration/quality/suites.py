"""Run the Great Expectations suites in ``expectations/`` on one extract's DataFrame.

The suites are plain GX 1.x JSON an analyst can read and edit (one per extract, versioned
in their ``meta``). Each expectation's ``meta`` carries:

* ``rule``        the id written to ``raw.quarantine.rule`` (e.g. ``enum:credit_type``),
* ``column``      the column named in quarantine rows and reports,
* ``columns``     (optional) the columns shown as a failing sample,
* ``description`` a Spanish sentence for the quality page.

GX is imported lazily (about 2.6 s): loading Dagster definitions never pays for it. We run
an *ephemeral* context on pandas DataFrames (GX's SQL datasource fails on DuckDB, see the
stack notes) with result format COMPLETE, whose ``unexpected_index_list`` gives the failing
rows; the DataFrame's index is the source line, so those indices are line numbers.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from orchestration.config import EXPECTATIONS_DIR

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class RuleSpec:
    rule: str
    expectation_type: str
    column: str
    columns: tuple[str, ...]
    description: str
    kwargs: dict


@dataclass
class RuleOutcome:
    """One rule on one file: how many rows broke it, which lines, a few example values."""

    extract: str
    rule: str
    expectation_type: str
    column: str
    description: str
    element_count: int
    failing_lines: list[int] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)

    @property
    def failing_count(self) -> int:
        return len(self.failing_lines)

    @property
    def passed(self) -> bool:
        return not self.failing_lines


def suite_path(name: str, directory: Path = EXPECTATIONS_DIR) -> Path:
    return directory / f"{name}.json"


@lru_cache(maxsize=16)
def suite_document(name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    path = suite_path(name, directory)
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    seen = set()
    for i, exp in enumerate(doc.get("expectations", [])):
        meta = exp.get("meta") or {}
        missing = [k for k in ("rule", "column", "description") if not meta.get(k)]
        if missing:
            raise ValueError(
                f"{path.name}: expectation {i + 1} ({exp.get('type')}) has no meta "
                f"{', '.join(missing)}; every rule needs rule, column and description"
            )
        if meta["rule"] in seen:
            raise ValueError(f"{path.name}: rule {meta['rule']} appears twice; rule ids are unique")
        seen.add(meta["rule"])
    return doc


def suite_version(name: str, directory: Path = EXPECTATIONS_DIR) -> str:
    return str(suite_document(name, directory).get("meta", {}).get("version", "unversioned"))


def rule_specs(name: str, directory: Path = EXPECTATIONS_DIR) -> list[RuleSpec]:
    specs = []
    for exp in suite_document(name, directory)["expectations"]:
        meta = exp["meta"]
        specs.append(
            RuleSpec(
                rule=meta["rule"],
                expectation_type=exp["type"],
                column=meta["column"],
                columns=tuple(meta.get("columns") or [meta["column"]]),
                description=meta["description"],
                kwargs=exp.get("kwargs", {}),
            )
        )
    return specs


def expectation_columns(spec: RuleSpec) -> tuple[str, ...]:
    """The columns one expectation reads (its kwargs and its row condition)."""
    kw = spec.kwargs
    cols = {kw[key] for key in ("column", "column_A", "column_B") if kw.get(key)}
    cond = kw.get("row_condition")
    if isinstance(cond, dict) and isinstance(cond.get("column"), dict):
        cols.add(cond["column"]["name"])
    return tuple(sorted(cols))


def frame_columns(name: str, directory: Path = EXPECTATIONS_DIR) -> list[str]:
    """Every column the suite reads or samples (the DataFrame handed to GX holds nothing else)."""
    seen: dict[str, None] = {}
    for spec in rule_specs(name, directory):
        for col in (*expectation_columns(spec), *spec.columns):
            seen[col] = None
    return list(seen)


_GX_LOCK = threading.Lock()


class SuiteRunner:
    """An ephemeral GX context holding the suites; ``validate`` runs one suite on a frame.

    Speed (a million rows per file): GX filters the whole batch DataFrame several times per
    expectation, so a wide frame is copied over and over. A big frame is therefore
    validated as one batch per set of columns the expectations read (usually a single
    column), each batch holding only those columns; a small frame (below
    ``NARROW_FROM_ROWS``) in one batch, where GX's fixed cost per batch would dominate.
    Results are the same either way and come back in the suite's order; the suite file
    stays one analyst-readable document.
    """

    NARROW_FROM_ROWS = 50_000

    def __init__(self, names: list[str], directory: Path = EXPECTATIONS_DIR):
        with _GX_LOCK:
            import great_expectations as gx
            import great_expectations.execution_engine.pandas_execution_engine as pandas_engine
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GX fingerprints every batch by hashing the whole DataFrame (0.8 s per million
            # rows, twice per validation); the fingerprint only names the batch, so skip it.
            pandas_engine.HASH_THRESHOLD = 0
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # one whole-DataFrame batch definition serves every suite: the frame is a parameter
        self._batches = (
            self.context.data_sources.add_pandas("cartera_extracts")
            .add_dataframe_asset("extract")
            .add_batch_definition_whole_dataframe("whole_file")
        )
        self.directory = directory
        self.suites = {}
        self._parts: dict[tuple, object] = {}  # (suite, expectation indexes) -> GX suite
        for name in names:
            doc = suite_document(name, directory)
            for i, exp in enumerate(doc["expectations"]):
                self._check_expectation(suite_path(name, directory).name, i, exp)
            self.suites[name] = gx.ExpectationSuite(
                name=doc["name"],
                expectations=doc["expectations"],
                meta=dict(doc.get("meta", {})),
                notes=doc.get("notes"),
            )

    def _check_expectation(self, file_name: str, index: int, expectation: dict) -> None:
        """Refuse an expectation GX cannot parse (GX itself may log it and drop it: a rule
        silently missing would let bad rows through)."""
        why = "GX dropped it"
        try:
            probe = self._gx.ExpectationSuite(name="probe", expectations=[expectation])
            if len(probe.expectations) == 1:
                return
        except Exception as exc:  # noqa: BLE001 -- pydantic or GX errors, reported below
            why = " ".join(str(exc).split())
        raise ValueError(
            f"{file_name}: expectation {index + 1} ({expectation.get('type')}, rule "
            f"{expectation.get('meta', {}).get('rule')}) is not valid GX 1.x: {why}"
        )

    @classmethod
    def in_background(cls, names: list[str], directory: Path = EXPECTATIONS_DIR):
        """Start building a runner in a thread; returns a callable that waits for it.

        Importing GX costs seconds of pure Python while DuckDB, which releases the GIL,
        reads the files: started first, the import overlaps the reading on a second core.
        """
        box: dict = {}

        def build():
            try:
                box["runner"] = cls(names, directory)
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=build, name="gx-suite-runner", daemon=True)
        thread.start()

        def get() -> "SuiteRunner":
            thread.join()
            if "error" in box:
                raise box["error"]
            return box["runner"]

        return get

    def _part(self, name: str, members: tuple[int, ...]):
        """A GX suite holding some expectations of suite ``name`` (cached)."""
        key = (name, members)
        if key not in self._parts:
            doc = suite_document(name, self.directory)
            self._parts[key] = self._gx.ExpectationSuite(
                name=f"{name}#{len(self._parts)}",
                expectations=[doc["expectations"][i] for i in members],
                meta=dict(doc.get("meta", {})),
            )
        return self._parts[key]

    def validate(self, name: str, frame, business_date) -> list[RuleOutcome]:
        """Validate ``frame`` (index = source line) against suite ``name``."""
        import pandas as pd

        specs = rule_specs(name, self.directory)
        if len(frame) >= self.NARROW_FROM_ROWS:
            groups: dict[tuple, list[int]] = {}
            for i, spec in enumerate(specs):
                groups.setdefault(expectation_columns(spec), []).append(i)
            batches = [(self._part(name, tuple(m)), list(cols)) for cols, m in groups.items()]
        else:
            batches = [(self.suites[name], list(frame.columns))]

        by_rule = {}
        parameters = {"business_date": pd.Timestamp(business_date)}
        for gx_suite, columns in batches:
            batch = self._batches.get_batch(batch_parameters={"dataframe": frame[columns]})
            result = batch.validate(
                gx_suite,
                result_format={"result_format": "COMPLETE"},
                expectation_parameters=parameters,
            )
            for res in result.results:
                by_rule[res.expectation_config.meta["rule"]] = res

        outcomes = []
        for spec in specs:
            res = by_rule[spec.rule]
            info = res.exception_info or {}
            if info.get("raised_exception"):
                raise RuntimeError(
                    f"expectations/{name}.json rule {spec.rule}: GX could not evaluate "
                    f"{spec.expectation_type}: {info.get('exception_message')}"
                )
            lines = sorted(_line_of(i) for i in (res.result.get("unexpected_index_list") or []))
            outcomes.append(
                RuleOutcome(
                    extract=name,
                    rule=spec.rule,
                    expectation_type=spec.expectation_type,
                    column=spec.column,
                    description=spec.description,
                    element_count=int(res.result.get("element_count", len(frame))),
                    failing_lines=lines,
                    sample=_sample(frame, lines, spec.columns),
                )
            )
        return outcomes


def _line_of(item) -> int:
    """GX reports a failing row as its index label, or as {column: value, "_line": label}."""
    return int(item["_line"] if isinstance(item, dict) else item)


def _sample(frame, lines: list[int], columns: tuple[str, ...]) -> list[dict]:
    """The first failing rows' values. Found by position with one vectorised scan of the
    index: ``frame.loc[labels]`` rebuilt a hash table of the million-row index per rule."""
    import numpy as np

    if not lines:
        return []
    wanted = lines[:SAMPLE_SIZE]
    index = frame.index.to_numpy()
    positions = np.flatnonzero(np.isin(index, wanted))
    picked = frame.iloc[positions][list(columns)]
    rows = dict(zip(index[positions].tolist(), picked.itertuples(index=False)))
    out = []
    for line in wanted:
        values = {c: _plain(v) for c, v in zip(columns, rows[line])}
        out.append({"line": int(line), **values})
    return out


def _plain(value):
    """JSON-friendly text of a cell (dates as ISO dates, missing as None)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)
