"""Names shared by the job, the CLI, the schedule and the sensor."""

JOB_NAME = "cartera_daily"

# Run-level retries (Dagster's run retry daemon) are off: a failed date needs a person or
# is retried at step level for transient errors only (see orchestration/ops/retries.py).
RUN_RETRY_TAGS: dict[str, str] = {}
