"""Configuration enters here and only here.

Paths, DSNs and keys come from environment variables (contract section 5) and are turned
into a Dagster resource (:class:`CarteraResource`) that every asset receives. Nothing
below this module reads ``os.environ`` for configuration.

Warehouse folder layout (``CARTERA_WAREHOUSE``)::

    cartera.duckdb            the pipeline's read-write warehouse (raw, staging, marts)
    serving.duckdb            what BI tools open read-only (swapped atomically by publish)
    parquet/<table>/as_of_date=YYYY-MM-DD/   Parquet export of the BI tables
    reports/report_YYYY-MM-DD.html           daily report
    quality/quality_YYYY-MM-DD.html          what was checked on each date
    restricted/worklist_YYYY-MM-DD.csv       operations worklist (PII, mode 0600)
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from orchestration.calendar import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
RULEBOOK_PATH = DBT_PROJECT_DIR / "rulebook.yml"

DEFAULT_LANDING = PROJECT_ROOT / "data" / "landing"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse"

# A fixed, public key used only by `cartera demo` (and said so on screen).
DEMO_PII_KEY = "cartera-demo-key-not-secret"
PII_KEY_ENV = "CARTERA_PII_KEY"


class ConfigError(RuntimeError):
    """A configuration problem a person must fix (message names the variable)."""


class CarteraResource(ConfigurableResource):
    """Where cartera reads and writes, and how strict it is.

    The PII key is deliberately *not* a field: resource config is shown in the Dagster UI,
    so the secret is read from the environment only when publish needs it.
    """

    landing_dir: str
    warehouse_dir: str
    postgres_dsn_env: str = "CARTERA_POSTGRES_DSN"
    demo_mode: bool = False
    # share of a file's rows that may be quarantined before the run stops (contract: 1%)
    quarantine_threshold: float = 0.01

    # ---- paths -------------------------------------------------------------------
    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse_dir)

    @property
    def warehouse_db(self) -> Path:
        return self.warehouse_path / "cartera.duckdb"

    @property
    def serving_db(self) -> Path:
        return self.warehouse_path / "serving.duckdb"

    def drop_dir(self, as_of_date: str) -> Path:
        return self.landing_path / as_of_date

    # ---- secrets and services ------------------------------------------------------
    def pii_key(self) -> bytes:
        key = os.environ.get(PII_KEY_ENV)
        if key:
            return key.encode("utf-8")
        if self.demo_mode:
            return DEMO_PII_KEY.encode("utf-8")
        raise ConfigError(
            f"{PII_KEY_ENV} is not set: it is the secret behind customer_key in the BI tables; "
            f"export {PII_KEY_ENV}=<a long random string> (keep it out of the repository)"
        )

    def postgres_dsn(self) -> str | None:
        return os.environ.get(self.postgres_dsn_env) or None

    # ---- connections -----------------------------------------------------------------
    def connect(self, read_only: bool = False):
        """One DuckDB connection to the pipeline warehouse (caller closes it)."""
        import duckdb

        self.warehouse_path.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.warehouse_db), read_only=read_only)


def resource_from_env(**overrides) -> CarteraResource:
    """Build the resource from CARTERA_* variables (defaults: folders inside the project)."""
    values = dict(
        landing_dir=os.environ.get("CARTERA_LANDING") or str(DEFAULT_LANDING),
        warehouse_dir=os.environ.get("CARTERA_WAREHOUSE") or str(DEFAULT_WAREHOUSE),
        demo_mode=os.environ.get("CARTERA_DEMO", "") == "1",
    )
    threshold = os.environ.get("CARTERA_QUARANTINE_THRESHOLD")
    if threshold:
        values["quarantine_threshold"] = float(threshold)
    values.update(overrides)
    values["landing_dir"] = str(Path(values["landing_dir"]).resolve())
    values["warehouse_dir"] = str(Path(values["warehouse_dir"]).resolve())
    return CarteraResource(**values)
