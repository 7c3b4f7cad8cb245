"""dbt models as Dagster assets (dagster-dbt), in the same business-date partitions as ingest.

One ``@dbt_assets`` definition covers every seed, model and data test of ``dbt_project/``.
A run passes its partition range to dbt as ``CARTERA_START_DATE`` / ``CARTERA_END_DATE``
(the dbt vars ``start_date`` / ``end_date``); each model's dbt tests become one asset check,
``<model>:dbt_tests``; a failing error-severity test fails the step, so publish never runs on
data that failed them.
"""



import filecmp
import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging import version

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MetadataValue,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.config import DBT_PROJECT_DIR, CarteraResource, resource_from_env
from orchestration.ops.retries import only_transient_retries
from orchestration.transform import spark as spark_engine
from orchestration.partitions import (
    business_date_partitions,
    partition_date_range,
    single_run_backfill,
)

PROJECT_ROOT = DBT_PROJECT_DIR.parent
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _compile_rulebook():
    """Compile dbt_project/rulebook.yml into the generated dbt macro (written only on change)."""
    from orchestration.transform.rulebook import compile_rulebook

    return compile_rulebook()


def _dbt_sources_mtime() -> float:
    """Newest modification time among the files that shape the dbt manifest."""
    newest = 0.0
    roots = [PROJECT_ROOT / "models", DBT_PROJECT_DIR / "macros", DBT_PROJECT_DIR / "seeds",
             DBT_PROJECT_DIR / "tests", DBT_PROJECT_DIR / "snapshots"]
    for root in roots:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file():
                    newest = max(newest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        newest = max(newest, (DBT_PROJECT_DIR / name).stat().st_mtime)
    return newest


def prepare_dbt_project(force: bool = False) -> Path:
    """Compile the rulebook and (re)parse the dbt project when the manifest is missing or stale.

    Called when the code location loads, by ``cartera prepare`` and by ``make dev``. Parsing
    needs no database connection.
    """
    _compile_rulebook()
    if force or not MANIFEST_PATH.exists() or MANIFEST_PATH.stat().st_mtime < _dbt_sources_mtime():
        # Parse with the warehouse path the runs will use (CARTERA_WAREHOUSE): dbt keys its
        # saved parse on the rendered profile, so a run on the same path parses nothing again.
        env = {**os.environ}
        env.setdefault("CARTERA_DUCKDB_PATH", str(resource_from_env().warehouse_db))
        result = subprocess.run(
            [DBT_EXECUTABLE, "parse", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"],
            cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "dbt parse failed for dbt_project/: " + (result.stdout + result.stderr).strip()[-2000:]
            )
    return MANIFEST_PATH


class CarteraDbtTranslator(DagsterDbtTranslator):
    """Asset keys = model/seed names; sources ``raw.<table>`` = the ingest assets' keys."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> "str | None":
        return "transform"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:data-engineering"]

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        """One asset check per model, ``dbt_tests``, for all the dbt tests of its data (see
        :func:`fold_test_results`). Tests of seeds (configuration) are no check: they run only
        in the runs that reload changed seeds; their results show as observations of the seed."""
        attached = tested_model(manifest, unique_id)
        if attached is None or self.get_asset_key(manifest["nodes"][attached]) != asset_spec.key:
            return None  # not a model's test, or offered for the seed a relationships test reads
        tests = tests_of(manifest, attached)
        return AssetCheckSpec(
            name=DBT_TESTS_CHECK, asset=asset_spec.key,
            description=(f"Las {len(tests)} pruebas de dbt del modelo sobre las fechas de la corrida: "
                         + ", ".join(sorted({_test_kind(manifest["nodes"][t]) for t in tests}))),
        )


# ---- dbt tests: one asset check per model ------------------------------------------------
# Dagster stores three events for every asset check of a run (planned, output, evaluation),
# each a committed write to the instance (2-10 ms here). One check per dbt test cost a
# 1,000-loan day 435 of its 551 events; one check per model, holding every test's outcome in
# its metadata, keeps the detail (which test failed, how many rows) at a seventh of the writes.
DBT_TESTS_CHECK = "dbt_tests"


def tested_model(manifest: Mapping[str, Any], test_id: str) -> "str | None":
    """The model a dbt data test is attached to (None for tests of seeds or sources)."""
    node = manifest["nodes"].get(test_id) or {}
    attached = node.get("attached_node") or ""
    if not attached and len(node.get("depends_on", {}).get("nodes", [])) == 1:
        attached = node["depends_on"]["nodes"][0]  # a singular test of one model
    return attached if attached.startswith("model.") else None


def tests_of(manifest: Mapping[str, Any], model: str) -> list[str]:
    """The dbt data tests attached to one model."""
    return [unique_id for unique_id in manifest["nodes"]
            if unique_id.startswith("test.") and tested_model(manifest, unique_id) == model]


def _test_kind(node: Mapping[str, Any]) -> str:
    return (node.get("test_metadata") or {}).get("name") or "singular"


def fold_test_results(invocation, context: AssetExecutionContext):
    """dagster-dbt's events for a dbt invocation (``dbt.cli(...)``), with the test results of each model folded
    into that model's one ``dbt_tests`` check result, yielded when dbt ends (also when it
    fails: a failed test fails the dbt build, and the check result says which test it was)."""
    wanted = {key.asset_key: key for key in context.selected_asset_check_keys if key.name == DBT_TESTS_CHECK}
    results: dict[AssetKey, list[dict]] = {}
    manifest = invocation.manifest

    def folded():
        return [folded_check_result(wanted[asset_key], tests) for asset_key, tests in results.items()]

    try:
        for event in invocation.stream_raw_events():
            unique_id = event.raw_event["data"].get("node_info", {}).get("unique_id") or ""
            model = tested_model(manifest, unique_id) if event.is_result_event and unique_id.startswith("test.") else None
            asset_key = translator.get_asset_key(manifest["nodes"][model]) if model else None
            if asset_key in wanted:
                data, node = event.raw_event["data"], manifest["nodes"][unique_id]
                results.setdefault(asset_key, []).append({
                    "test": node["name"], "kind": _test_kind(node),
                    "column": node.get("column_name"),
                    "status": (data.get("status") or data["node_info"].get("node_status") or "").lower(),
                    "failures": data.get("num_failures"),
                    "seconds": round(float(data.get("execution_time") or 0.0), 3),
                })
                continue
            yield from event.to_default_asset_events(
                manifest=manifest, dagster_dbt_translator=translator, context=context,
                target_path=invocation.target_path, project=dbt_project,
            )
    except Exception:  # dbt failed: record what its tests found, then fail the step
        yield from folded()
        raise
    yield from folded()


def folded_check_result(key, tests: list[dict]) -> AssetCheckResult:
    """One model's dbt test outcomes as one check result: passed when every test passed;
    severity ERROR when a test failed at error severity, WARN when tests only warned."""
    failed = [t for t in tests if t["status"] in ("fail", "error")]
    warned = [t for t in tests if t["status"] == "warn"]
    passed = sum(t["status"] == "pass" for t in tests)
    bad = failed + warned
    description = None
    if bad:
        description = "fallan: " + "; ".join(
            f"{t['test']} ({t['failures']} filas)" if t["failures"] is not None else t["test"] for t in bad)
    return AssetCheckResult(
        asset_key=key.asset_key, check_name=key.name, passed=not bad,
        severity=AssetCheckSeverity.ERROR if failed or not bad else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "tests_run": len(tests), "tests_passed": passed, "tests_failed": len(failed),
            "tests_warned": len(warned),
            "failing_count": sum(t["failures"] or 0 for t in bad),
            "failing_tests": [t["test"] for t in bad],
            "tests": MetadataValue.json(tests),
        },
    )


translator = CarteraDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def latest_transformed_date(cartera: CarteraResource) -> "str | None":
    """The latest as_of_date already in marts.segment_assignments (None on a new warehouse)."""
    if not cartera.warehouse_db.exists():
        return None
    con = cartera.connect()
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'segment_assignments'"
        ).fetchone()[0]
        if not exists:
            return None
        value = con.execute("select max(as_of_date) from marts.segment_assignments").fetchone()[0]
        return value.isoformat() if value else None
    finally:
        con.close()


def check_history_order(start: str, end: str, latest: str | None) -> None:
    """Features of later dates depend on earlier ones: refuse a range that would leave
    already-transformed later dates computed on stale history."""
    if latest and start < latest and end < latest:
        raise Failure(
            description=(
                f"{start} is before the latest processed date {latest}: later dates were computed "
                f"without it; re-run the whole range so they see the corrected history: "
                f"cartera run --from {start} --to {latest}"
            ),
            allow_retries=False,
        )


MANIFEST = prepare_dbt_project()


def dbt_date_env(start: str, end: str) -> dict[str, str]:
    """The run's dates for dbt: environment variables that dbt_project.yml turns into the vars
    start_date / end_date when a node runs. Passing them as ``--vars`` instead would make dbt
    throw away its saved parse in every daily run (~3 s), since the vars change every day."""
    return {"CARTERA_START_DATE": start, "CARTERA_END_DATE": end}


def dbt_build_args(start: str, end: str, *, load_seeds: bool) -> list[str]:
    """The `dbt build` arguments of a run over start..end (the dates go in :func:`dbt_date_env`).

    Unit tests pin the *default* rulebook and seeds: they belong to CI (tests/transform), not
    to a production run where an analyst may have changed a threshold on purpose. Without
    ``load_seeds`` (seed files unchanged since the warehouse loaded them) the seeds and the
    tests that read only seeds (configuration tests) are left out; ``cautious`` keeps the
    tests that join a model to a seed (every loan's credit_type exists in credit_type_groups):
    they check the day's rows.
    """
    args = ["build", "--exclude-resource-type", "unit_test"]
    if not load_seeds:
        args += ["--exclude", "resource_type:seed", "--indirect-selection", "cautious"]
    return args


# ---- seeds: loaded when they change, not every day ----------------------------------------
# Seeds are configuration (thresholds, calendars, strategies). Reloading 11 of them and
# running their ~60 configuration tests cost every daily run ~70 dbt nodes; they are built
# only when the seed files differ from the ones the warehouse was last loaded from.
SEED_STATE_TABLE = "seed_state"  # in schema config, beside the seeds it describes
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"


def seeds_fingerprint() -> str:
    """sha256 of everything that shapes the seed tables: the files under seeds/ (CSV data and
    their YAML configs and tests), dbt_project.yml (seed configs) and the dbt-core version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SEEDS_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(DBT_PROJECT_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(hashlib.sha256((DBT_PROJECT_DIR / "dbt_project.yml").read_bytes()).digest())
    digest.update(metadata.version("dbt-core").encode())
    return digest.hexdigest()


def _dbt_target() -> str:
    return os.environ.get("CARTERA_DBT_TARGET") or "duckdb"


def seeds_are_loaded(cartera: CarteraResource, fingerprint: str) -> bool:
    """True when the warehouse holds every seed table, loaded by a successful build from seed
    files with this fingerprint. Only the DuckDB target keeps that record (other targets keep
    their seeds elsewhere, so they load them in every run)."""
    if _dbt_target() != "duckdb" or not cartera.warehouse_db.exists():
        return False
    seeds = sorted(p.stem for p in SEEDS_DIR.glob("*.csv"))
    con = cartera.connect()
    try:
        tables = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'config'"
        ).fetchall()}
        if SEED_STATE_TABLE not in tables or not set(seeds) <= tables:
            return False
        row = con.execute(f"select seeds_sha256 from config.{SEED_STATE_TABLE}").fetchone()
        return bool(row) and row[0] == fingerprint
    finally:
        con.close()


def record_seeds_loaded(cartera: CarteraResource, fingerprint: str) -> None:
    """Remember which seed files the warehouse's seed tables came from (after dbt succeeded)."""
    if _dbt_target() != "duckdb":
        return
    con = cartera.connect()
    try:
        con.execute("begin")
        con.execute(f"create table if not exists config.{SEED_STATE_TABLE} "
                    "(seeds_sha256 varchar not null, loaded_at timestamp not null)")
        con.execute(f"delete from config.{SEED_STATE_TABLE}")
        con.execute(f"insert into config.{SEED_STATE_TABLE} values (?, current_timestamp)", [fingerprint])
        con.execute("commit")
    finally:
        con.close()


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project,
    partitions_def=business_date_partitions,
    backfill_policy=single_run_backfill,
    dagster_dbt_translator=translator,
    name="cartera_dbt_models",
)
def cartera_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, cartera: CarteraResource):
    """Build seeds, staging, intermediate features and marts for the run's business dates."""
    start, end = partition_date_range(context)
    check_history_order(start, end, latest_transformed_date(cartera))
    rulebook = _compile_rulebook()
    context.log.info(f"rulebook version {rulebook.version}; dbt vars start_date={start} end_date={end}")
    # dbt and Dagster share one warehouse file: profiles.yml reads this variable.
    os.environ["CARTERA_DUCKDB_PATH"] = str(cartera.warehouse_db)
    os.environ.update(dbt_date_env(start, end))
    # CARTERA_ENGINE=spark: the same models on Spark via profiles.yml's spark target (docs/scale-out.md)
    on_spark = spark_engine.engine() == "spark"
    if on_spark:
        os.environ.update(spark_engine.spark_settings(cartera.warehouse_path))
    # A run of part of the dbt assets (picked in the UI) gets dagster-dbt's own selection as is.
    whole = (context.selected_asset_keys == set(context.assets_def.keys)
             and context.selected_asset_check_keys == set(context.assets_def.check_keys))
    fingerprint = seeds_fingerprint()
    load_seeds = not whole or not seeds_are_loaded(cartera, fingerprint)
    context.log.info("seeds " + ("unchanged since last loaded: not rebuilt" if not load_seeds
                                 else "(re)loaded: seed files changed or not loaded yet" if whole
                                 else "as selected"))
    args = dbt_build_args(start, end, load_seeds=load_seeds)

    def dagster_events(invocation):
        return fold_test_results(invocation, context)

    # A failing model or data test is data (a person must look), not a transient error:
    # only a held lock or the like goes back to the job's retry policy.
    if on_spark:  # raw hand-off, dbt on Spark, marts back into the warehouse for publish
        yield from spark_engine.build_on_spark(context, dbt, cartera, start, end, args, events=dagster_events)
        return
    with only_transient_retries():
        with saved_parse(cartera):  # the dbt process reads the variable when it starts
            invocation = dbt.cli(args, context=context)
        yield from dagster_events(invocation)
    save_parse(cartera, invocation.target_path)
    if load_seeds and whole:
        record_seeds_loaded(cartera, fingerprint)


# ---- dbt's saved parse, one per warehouse --------------------------------------------------
# dbt reuses its parse of the project only when the rendered profile (the warehouse path
# included) matches the one it parsed with. dagster-dbt gives each run a fresh target folder
# seeded from dbt_project/target, parsed for the default warehouse; a warehouse elsewhere
# (CARTERA_WAREHOUSE, a benchmark, a test) would re-parse the whole project in every run.
# So each warehouse keeps the parse of its last run and hands it to the next one.

def saved_parse_path(cartera: CarteraResource) -> Path:
    return cartera.warehouse_path / ".dbt" / "partial_parse.msgpack"


@contextmanager
def saved_parse(cartera: CarteraResource):
    """While dbt starts: point it at this warehouse's saved parse (DBT_PARTIAL_PARSE_FILE_PATH),
    if any; the variable is removed afterwards so no other dbt process inherits it."""
    saved = saved_parse_path(cartera)
    if saved.is_file():
        os.environ["DBT_PARTIAL_PARSE_FILE_PATH"] = str(saved)
    try:
        yield
    finally:
        os.environ.pop("DBT_PARTIAL_PARSE_FILE_PATH", None)


def save_parse(cartera: CarteraResource, target_path: Path) -> None:
    """Keep the parse dbt wrote in this run's target folder for the warehouse's next run
    (written to a temporary name and renamed: a reader never sees half a file).

    A run that found nothing to re-parse writes no new parse: its target folder then holds
    only the copy of ``dbt_project/target``'s parse that dagster-dbt put there, made for
    another warehouse path. Saving that copy made every other daily run re-parse the whole
    project ("profile has changed"); the warehouse keeps the parse it has instead."""
    written = Path(target_path) / "partial_parse.msgpack"
    if not written.is_file():
        return
    seeded = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    if seeded.is_file() and filecmp.cmp(written, seeded, shallow=False):
        return  # dbt reused the warehouse's saved parse (or this very one): nothing new to keep
    saved = saved_parse_path(cartera)
    partial = saved.with_name(saved.name + ".tmp")
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(written.read_bytes())
        os.replace(partial, saved)
    except OSError:  # a full disk, say: only a speed-up, the next run parses the project itself
        partial.unlink(missing_ok=True)


class CarteraDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two per-run costs cartera does not use: a ``dbt --version``
    subprocess (~2 s: a full dbt import) to learn the version of the dbt beside this Python,
    and an in-process dbt adapter (~1 s) that only serves column metadata and row counts."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(metadata.version("dbt-core"))  # the same installation
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None  # no fetch_column_metadata() / fetch_row_counts() in cartera


def dbt_resource() -> DbtCliResource:
    return CarteraDbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                                 dbt_executable=DBT_EXECUTABLE)


transform_assets = [cartera_dbt_models]
