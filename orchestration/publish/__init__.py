"""publish stage (see docs/publish.md and docs/design.md).

assets.py    the ``serving_warehouse`` asset and ``publish_range`` (the sequence)
serving.py   serving.duckdb: live/standby files, atomic swap, storage version
parquet.py   Parquet export per table and date
postgres.py  PostgreSQL target: schemas, roles, one transaction per date, COPY
worklist.py  restricted worklist CSV (0600, formula cells neutralised)
audit.py     run_audit, record_failed_run, format_audit (``cartera audit``)
pii.py       customer_key (HMAC-SHA256 computed in DuckDB)
files.py     crash-safe file replacement helpers
"""
