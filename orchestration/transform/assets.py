"""dbt models as Dagster assets (dagster-dbt), in the same business-date partitions as ingest.

One ``@dbt_assets`` definition covers every seed, model and data test of ``dbt_project/``.
A run passes its partition range as the dbt vars ``start_date`` / ``end_date``; dbt tests
become asset checks; a failing error-severity test fails the step, so publish never runs on
data that failed them.
"""



import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Failure
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.config import DBT_PROJECT_DIR, CarteraResource
from orchestration.ops.retries import only_transient_retries
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
        env = {**os.environ}
        env.setdefault("CARTERA_DUCKDB_PATH", str(PROJECT_ROOT / "data" / "warehouse" / "cartera.duckdb"))
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
    dbt_vars = {"start_date": start, "end_date": end}
    # Unit tests pin the *default* rulebook and seeds: they belong to CI (tests/transform), not
    # to a production run where an analyst may have changed a threshold on purpose.
    args = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(dbt_vars)]
    # A failing model or data test is data (a person must look), not a transient error:
    # only a held lock or the like goes back to the job's retry policy.
    with only_transient_retries():
        yield from dbt.cli(args, context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)


transform_assets = [cartera_dbt_models]
