"""The one Dagster Definitions object of the cartera code location.

Definitions are split by domain (ingest, transform, publish, report, ops); this module only
assembles them. Loading it must stay fast: Great Expectations and plotting libraries are
imported inside the assets that use them, never at definition time.
"""

from __future__ import annotations

import warnings

from dagster import AssetSelection, BetaWarning, Definitions, define_asset_job, in_process_executor

# backfill_policy (one run per partition range: the bulk onboarding path) is marked beta in
# Dagster 1.13; the warning says nothing an operator can act on.
warnings.filterwarnings("ignore", category=BetaWarning)

from orchestration.config import resource_from_env
from orchestration.ingest.assets import ingest_assets
from orchestration.ops.jobs import JOB_NAME, RUN_RETRY_TAGS
from orchestration.ops.retries import TRANSIENT_RETRY_POLICY
from orchestration.partitions import business_date_partitions
from orchestration.publish.assets import publish_assets
from orchestration.report.assets import report_assets
from orchestration.transform.assets import dbt_resource, transform_assets

daily_job = define_asset_job(
    name=JOB_NAME,
    selection=AssetSelection.all(),
    partitions_def=business_date_partitions,
    executor_def=in_process_executor,
    tags=RUN_RETRY_TAGS,
    # Steps retry only transient failures (a lock held briefly, a file still being written):
    # data failures raise Failure(allow_retries=False) and wait for a person.
    op_retry_policy=TRANSIENT_RETRY_POLICY,
    description="Ingest, check, transform, publish and report one range of business dates.",
)


def build_definitions() -> Definitions:
    from orchestration.ops.schedules import schedules
    from orchestration.ops.sensors import sensors

    return Definitions(
        assets=[*ingest_assets, *transform_assets, *publish_assets, *report_assets],
        jobs=[daily_job],
        schedules=schedules,
        sensors=sensors,
        resources={"cartera": resource_from_env(), "dbt": dbt_resource()},
    )


defs = build_definitions()
