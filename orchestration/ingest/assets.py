"""Dagster assets of the ingest stage: one multi-asset, because a drop lands whole or not at all.

``raw/loans``, ``raw/payments``, ``raw/customers`` and ``raw/fx_rates`` are materialized
together for a *range* of business dates (single-run backfill). Dates are processed in
order; a date without a landing folder is skipped (logged). Each asset carries two blocking
checks:

* ``<extract>_structure`` -- the file is present, listed in ``_control.csv``, readable, has
  its columns, its row count and control total match (and, for fx_rates, every currency
  used has a rate);
* ``<extract>_rules`` -- the GX suite ``expectations/<extract>.json`` (plus type checks):
  fails when the file's quarantined share is above ``CarteraResource.quarantine_threshold``.

A rejected drop (structure or threshold) yields the check results gathered so far and then
raises ``dagster.Failure`` (no retry) whose description is the one-line reason also stored
in ``raw.drops.message``: the step fails, nothing downstream runs and the run is marked
failed. Dates before the rejected one in the same range stay landed (each date is its own
transaction); no materialization is recorded for a failed run, so re-run from that date.

Definitions loading stays fast: the pipeline (and GX inside it) is imported in the body.
"""


from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from orchestration.config import CarteraResource
from orchestration.ingest.schema import DISPLAY_ORDER
from orchestration.ops.retries import only_transient_retries
from orchestration.partitions import (
    business_date_partitions,
    dates_in_range,
    partition_date_range,
    single_run_backfill,
)

OWNERS = ["team:cartera-data"]

DESCRIPTIONS = {
    "loans": "Loan portfolio snapshot at close of each business date (loans.csv), typed; "
    "rows that broke a rule are in raw.quarantine instead.",
    "payments": "Payments and reversals posted on each business date (payments.csv), typed; "
    "payment_id unique across days.",
    "customers": "Customer snapshot of each business date (customers.csv), typed. Holds PII.",
    "fx_rates": "SBS accounting rate to PEN per currency and business date (fx_rates.csv).",
}


def asset_key(extract: str) -> AssetKey:
    return AssetKey(["raw", extract])


INGEST_SPECS = [
    AssetSpec(
        asset_key(name),
        group_name="ingest",
        description=DESCRIPTIONS[name],
        owners=OWNERS,
        kinds={"duckdb"},
        tags={"stage": "ingest"},
    )
    for name in DISPLAY_ORDER
]

INGEST_CHECK_SPECS = [
    spec
    for name in DISPLAY_ORDER
    for spec in (
        AssetCheckSpec(
            f"{name}_structure",
            asset=asset_key(name),
            blocking=True,
            description=f"{name} file present, listed in _control.csv, readable, required "
            "columns present, row count and control total as promised.",
        ),
        AssetCheckSpec(
            f"{name}_rules",
            asset=asset_key(name),
            blocking=True,
            description=f"Great Expectations suite expectations/{name}.json plus type checks; "
            "fails when the quarantined share of the file is above the threshold.",
        ),
    )
]


@multi_asset(
    name="ingest_drops",
    specs=INGEST_SPECS,
    check_specs=INGEST_CHECK_SPECS,
    partitions_def=business_date_partitions,
    backfill_policy=single_run_backfill,
    can_subset=False,
)
def ingest_drops(context: AssetExecutionContext, cartera: CarteraResource):
    """Ingest and validate every landing folder in the run's date range, in date order."""
    from orchestration.ingest.pipeline import ingest_drop
    from orchestration.quality.suites import SuiteRunner

    start, end = partition_date_range(context)
    dates = []
    for day in dates_in_range(start, end):
        if cartera.drop_dir(day).is_dir():
            dates.append(day)
        else:
            context.log.info(f"{day}: no landing folder {cartera.drop_dir(day)}; skipped")
    if not dates:
        raise Failure(
            description=f"no landing folder for {start}..{end} under {cartera.landing_path} "
            "(expected <landing>/<YYYY-MM-DD>/)",
            allow_retries=False,
        )

    # GX is imported in a thread while DuckDB reads the first files (see SuiteRunner)
    runner = SuiteRunner.in_background(list(DISPLAY_ORDER))

    results = []
    # Only a held lock or a file still being written is retried; anything else (a full disk,
    # a bug) fails once with its one-line reason instead of three more identical attempts.
    with only_transient_retries():
        con = cartera.connect()
        try:
            for day in dates:
                result = ingest_drop(con, cartera, day, context.run_id, runner, context.log)
                results.append(result)
                if not result.landed:
                    break
        finally:
            con.close()

    yield from check_results(results)
    last = results[-1]
    if not last.landed:
        landed = [r.as_of_date for r in results if r.landed]
        if landed:
            context.log.warning(
                f"dates landed before the rejection (kept): {', '.join(landed)}; "
                f"re-run from {last.as_of_date}"
            )
        raise Failure(
            description=f"{last.as_of_date}: drop rejected: {last.message}",
            allow_retries=False,
            metadata={"quality_report": MetadataValue.path(str(last.report_path))},
        )
    yield from materialize_results(results)


def check_results(results) -> list[AssetCheckResult]:
    """Aggregate per-date outcomes into one result per check (only checks that ran)."""
    out = []
    last = results[-1]
    for name in DISPLAY_ORDER:
        # structure
        failed_here = last.reason == "structure" and last.failed_extract in (name, None)
        evaluated = all(name in r.structure_done for r in results[:-1]) and (
            name in last.structure_done or failed_here
        )
        if evaluated:
            per_date = {}
            for r in results:
                f = r.files.get(name)
                entry = {"passed": name in r.structure_done}
                if f and f.read:
                    entry.update(
                        file_name=f.file_name,
                        sha256=f.read.scan.sha256,
                        rows_read=f.rows_read,
                        delimiter=f.read.delimiter,
                        encoding=f.read.encoding,
                        date_formats=f.read.date_formats,
                    )
                    if f.read.control_total_read is not None:
                        entry["control_total_read"] = str(f.read.control_total_read)
                if r.reason == "structure" and r.failed_extract in (name, None):
                    entry["error"] = r.message
                per_date[r.as_of_date] = entry
            metadata = {"dates": MetadataValue.json(per_date)}
            if failed_here:
                metadata["error"] = MetadataValue.text(last.message)
            out.append(
                AssetCheckResult(
                    asset_key=asset_key(name),
                    check_name=f"{name}_structure",
                    passed=not failed_here,
                    severity=AssetCheckSeverity.ERROR,
                    metadata=metadata,
                )
            )
        # rules
        if all(r.rules_done for r in results):
            out.append(_rules_check(name, results))
    return out


def _rules_check(name: str, results) -> AssetCheckResult:
    counts: Counter = Counter()
    sample, per_date = [], {}
    read = quarantined = 0
    passed = True
    threshold = 0.0
    for r in results:
        f = r.files[name]
        threshold = f.threshold
        counts.update(f.rule_counts())
        read += f.rows_read
        quarantined += f.rows_quarantined
        passed = passed and not f.over_threshold
        per_date[r.as_of_date] = {
            "rows_read": f.rows_read,
            "rows_quarantined": f.rows_quarantined,
            "share": round(f.share, 6),
            "over_threshold": f.over_threshold,
            "rules_failing": dict(f.rule_counts()),
        }
        for rule in f.rules:
            for s in rule.sample[:3]:
                if len(sample) < 10:
                    sample.append({"date": r.as_of_date, "rule": rule.rule, **s})
    top_rule = counts.most_common(1)[0][0] if counts else None
    from orchestration.quality.suites import suite_version

    return AssetCheckResult(
        asset_key=asset_key(name),
        check_name=f"{name}_rules",
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "rule": MetadataValue.text(top_rule or "none failed"),
            "failing_count": MetadataValue.int(quarantined),
            "rows_read": MetadataValue.int(read),
            "quarantined_share": MetadataValue.float(quarantined / read if read else 0.0),
            "threshold": MetadataValue.float(threshold),
            "rules_failing": MetadataValue.json(dict(counts)),
            "sample": MetadataValue.json(sample),
            "by_date": MetadataValue.json(per_date),
            "suite": MetadataValue.text(f"expectations/{name}.json v{suite_version(name)}"),
            "quality_report": MetadataValue.path(str(results[-1].report_path)),
        },
    )


def materialize_results(results) -> list[MaterializeResult]:
    out = []
    for name in DISPLAY_ORDER:
        files = {r.as_of_date: r.files[name] for r in results}
        out.append(
            MaterializeResult(
                asset_key=asset_key(name),
                metadata={
                    "dates": MetadataValue.json(sorted(files)),
                    "rows_read": MetadataValue.int(sum(f.rows_read for f in files.values())),
                    "rows_landed": MetadataValue.int(sum(f.rows_landed for f in files.values())),
                    "rows_quarantined": MetadataValue.int(
                        sum(f.rows_quarantined for f in files.values())
                    ),
                    "sha256": MetadataValue.text(files[max(files)].read.scan.sha256),
                    "files": MetadataValue.json(
                        {
                            d: {
                                "file_name": f.file_name,
                                "sha256": f.read.scan.sha256,
                                "rows_read": f.rows_read,
                                "rows_landed": f.rows_landed,
                                "rows_quarantined": f.rows_quarantined,
                            }
                            for d, f in files.items()
                        }
                    ),
                    "quality_report": MetadataValue.path(str(results[-1].report_path)),
                },
            )
        )
    return out


ingest_assets = [ingest_drops]
