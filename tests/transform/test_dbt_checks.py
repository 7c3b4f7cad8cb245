"""The dbt asset as Dagster runs it: its checks, and the parse it keeps per warehouse.

dbt tests reach Dagster as ONE asset check per model (``<model>:dbt_tests``).

A check per dbt test cost three stored events per test per run (435 of a small day's 551
events); one per model keeps the detail -- which test, how many rows -- in its metadata.
Real Dagster materializations of the dbt asset on a real DuckDB warehouse (the small
portfolio of ``test_marts``): a clean date passes every model's check; a duplicate loan on
the run's date fails the build, and the failed check names the test and its failing rows.
"""

from __future__ import annotations

import json

import duckdb
import msgpack
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from orchestration.config import CarteraResource
from orchestration.transform import assets as transform
from test_marts import DATES, write_raw

pytestmark = pytest.mark.slow


def model_tests() -> dict[str, set[str]]:
    """{model name: names of its data tests} from the manifest the job runs."""
    manifest = json.loads(transform.MANIFEST.read_text(encoding="utf-8"))
    out: dict[str, set[str]] = {}
    for unique_id, node in manifest["nodes"].items():
        model = transform.tested_model(manifest, unique_id) if unique_id.startswith("test.") else None
        if model:
            out.setdefault(model.split(".")[-1], set()).add(node["name"])
    return out


def build(warehouse, day: str, monkeypatch):
    """Materialize every dbt asset (and its checks) for one date; (result, {asset: evaluation})."""
    monkeypatch.setenv("CARTERA_DUCKDB_PATH", str(warehouse / "cartera.duckdb"))  # restored after
    monkeypatch.delenv("CARTERA_ENGINE", raising=False)
    resource = CarteraResource(landing_dir=str(warehouse / "landing"), warehouse_dir=str(warehouse))
    with DagsterInstance.ephemeral() as instance:
        result = materialize([transform.cartera_dbt_models], resources={"dbt": transform.dbt_resource(), "cartera": resource},
                             instance=instance, partition_key=day, raise_on_error=False)
        evaluations = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    return result, evaluations


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("checks")
    write_raw(path / "cartera.duckdb")
    return path


def test_a_clean_date_passes_one_check_per_model_holding_every_test(warehouse, monkeypatch):
    result, evaluations = build(warehouse, DATES[0], monkeypatch)
    assert result.success
    expected = model_tests()
    assert set(evaluations) == set(expected)  # one check per tested model, nothing per test
    for model, evaluation in evaluations.items():
        assert evaluation.check_name == transform.DBT_TESTS_CHECK
        assert evaluation.passed, (model, evaluation.description)
        tests = evaluation.metadata["tests"].value
        assert {t["test"] for t in tests} == expected[model]
        assert {t["status"] for t in tests} == {"pass"}
        assert evaluation.metadata["tests_run"].value == len(expected[model])
        assert evaluation.metadata["failing_tests"].value == []


def test_a_failing_test_fails_the_build_and_its_model_check_names_it(warehouse, monkeypatch):
    con = duckdb.connect(str(warehouse / "cartera.duckdb"))
    con.execute("insert into raw.loans select * from raw.loans where as_of_date = ? limit 1", [DATES[1]])
    con.close()
    result, evaluations = build(warehouse, DATES[1], monkeypatch)
    assert not result.success  # dbt's exit code fails the step: nothing downstream is built
    failed = evaluations["stg_loans"]
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    name = "unique_combination_of_columns_stg_loans_as_of_date__loan_id"
    assert failed.metadata["failing_tests"].value == [name]
    assert failed.metadata["failing_count"].value == 1
    assert name in failed.description and "1 filas" in failed.description
    by_test = {t["test"]: t["status"] for t in failed.metadata["tests"].value}
    assert by_test.pop(name) == "fail"
    assert by_test and set(by_test.values()) == {"pass"}  # the model's other tests ran and passed
    assert "segment_assignments" not in evaluations  # skipped by dbt after the failure: no result


def profile_hash(parse_file) -> str:
    """The profile (warehouse path included) a saved dbt parse was made for."""
    state = msgpack.unpackb(parse_file.read_bytes(), strict_map_key=False)["state_check"]
    return state["profile_hash"]["checksum"]


def test_each_run_leaves_a_parse_made_for_its_own_warehouse(tmp_path, monkeypatch):
    """A run that re-parses nothing writes no parse; its target folder then holds dagster-dbt's
    copy of the project's parse, made for another warehouse path. Keeping that copy made every
    other daily run re-parse the whole project (~2 s)."""
    write_raw(tmp_path / "cartera.duckdb")
    saved = tmp_path / ".dbt" / "partial_parse.msgpack"
    hashes = []
    for day in DATES[:3]:  # new warehouse (full parse), then two days that re-parse nothing
        result, _ = build(tmp_path, day, monkeypatch)
        assert result.success
        hashes.append(profile_hash(saved))
    project_parse = transform.DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    assert profile_hash(project_parse) != hashes[0]  # the project's parse is for another path
    assert hashes == [hashes[0]] * 3
