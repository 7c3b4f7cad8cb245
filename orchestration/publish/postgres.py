"""PostgreSQL target (when ``CARTERA_POSTGRES_DSN`` is set).

- schema ``cartera``: the BI tables, same columns and rows as serving.duckdb;
- schema ``cartera_ops``: ``daily_actions``, the operations worklist (PII);
- role ``cartera_bi``: USAGE + SELECT on ``cartera`` only (no write, no CREATE, nothing on
  ``cartera_ops``); role ``cartera_ops``: USAGE + SELECT on ``cartera_ops``. Both are
  NOLOGIN group roles: a DBA grants them to real login users. They are created if missing,
  their grants re-applied at every publish (idempotent, plus default privileges for
  tables created later), and then *verified*; a role that can do more (say someone granted
  INSERT, or made it a superuser) stops the publish with a message naming the problem.

Each date is replaced in one transaction per date: DELETE the date from every table, then
bulk-load it with ``COPY ... FROM STDIN`` (CSV produced by Arrow from DuckDB record
batches, no row-by-row Python). Rows come from the *new* serving file while it is staged,
so PostgreSQL and serving.duckdb hold the same rows. The DSN user needs CREATEROLE (or the
roles must exist) and must own the two schemas.
"""

from __future__ import annotations

import datetime as dt
import io

from orchestration.publish.serving import ALIAS, BI_TABLES, table_columns, table_exists

BI_SCHEMA = "cartera"
OPS_SCHEMA = "cartera_ops"
BI_ROLE = "cartera_bi"
OPS_ROLE = "cartera_ops"
OPS_TABLE = "daily_actions"
BATCH_ROWS = 50_000

_PG_TYPES = {
    "VARCHAR": "text", "DATE": "date", "INTEGER": "integer", "BIGINT": "bigint",
    "SMALLINT": "smallint", "TINYINT": "smallint", "BOOLEAN": "boolean", "DOUBLE": "double precision",
    "FLOAT": "real", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "HUGEINT": "numeric(38,0)", "UBIGINT": "numeric(20,0)", "UINTEGER": "bigint", "TIME": "time",
    "JSON": "text", "UUID": "uuid",
}
# Uniqueness the contract promises, enforced in PostgreSQL too.
_PRIMARY_KEYS = {
    "segment_assignments": ("as_of_date", "loan_id"),
    "segment_summary": ("as_of_date", "segment_code", "strategy_code"),
    "segment_migration": ("as_of_date", "from_segment", "to_segment"),
    "bucket_roll_rates": ("as_of_date", "from_bucket", "to_bucket"),
    OPS_TABLE: ("as_of_date", "loan_id"),
}


class PostgresPublishError(RuntimeError):
    """The PostgreSQL target refused the publish (one-line message)."""


def redacted_dsn(dsn: str) -> str:
    """user@host:port/dbname, without password (safe for logs and metadata)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - never echo an unparsable DSN (it may hold a password)
        return "<unparsable DSN>"
    return (
        f"{parts.get('user', '')}@{parts.get('host', 'localhost')}:{parts.get('port', '5432')}"
        f"/{parts.get('dbname', '')}"
    )


def pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    try:
        return _PG_TYPES[duck_type]
    except KeyError:
        raise PostgresPublishError(f"no PostgreSQL type for DuckDB type {duck_type}") from None


def _ensure_table(cur, schema: str, table: str, columns: list[tuple[str, str]]) -> None:
    from psycopg import sql

    cols = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(pg_type(t))) for c, t in columns]
    pk = _PRIMARY_KEYS.get(table)
    if pk and all(k in dict(columns) for k in pk):
        cols.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, pk))))
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
            sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(cols)
        )
    )
    for c, t in columns:  # columns the source gained since the table was created
        cur.execute(
            sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(c), sql.SQL(pg_type(t))
            )
        )
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (as_of_date)").format(
            sql.Identifier(f"{table}_as_of_date_idx"), sql.Identifier(schema), sql.Identifier(table)
        )
    )


def _ensure_roles_and_grants(cur) -> None:
    for role in (BI_ROLE, OPS_ROLE):
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cur.fetchone() is None:
            try:
                cur.execute(f"CREATE ROLE {role} NOLOGIN")
            except Exception as exc:
                raise PostgresPublishError(
                    f"role {role} is missing and could not be created ({type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0]}); create it or give the DSN user CREATEROLE"
                ) from None
    cur.execute(f"""
        REVOKE ALL ON SCHEMA {BI_SCHEMA} FROM PUBLIC;
        REVOKE ALL ON SCHEMA {OPS_SCHEMA} FROM PUBLIC;
        REVOKE ALL ON ALL TABLES IN SCHEMA {BI_SCHEMA} FROM PUBLIC;
        REVOKE ALL ON ALL TABLES IN SCHEMA {OPS_SCHEMA} FROM PUBLIC;
        REVOKE ALL ON SCHEMA {BI_SCHEMA} FROM {BI_ROLE};
        REVOKE ALL ON ALL TABLES IN SCHEMA {BI_SCHEMA} FROM {BI_ROLE};
        GRANT USAGE ON SCHEMA {BI_SCHEMA} TO {BI_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA {BI_SCHEMA} TO {BI_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA {BI_SCHEMA} GRANT SELECT ON TABLES TO {BI_ROLE};
        REVOKE ALL ON SCHEMA {OPS_SCHEMA} FROM {BI_ROLE};
        REVOKE ALL ON ALL TABLES IN SCHEMA {OPS_SCHEMA} FROM {BI_ROLE};
        REVOKE ALL ON SCHEMA {OPS_SCHEMA} FROM {OPS_ROLE};
        REVOKE ALL ON ALL TABLES IN SCHEMA {OPS_SCHEMA} FROM {OPS_ROLE};
        GRANT USAGE ON SCHEMA {OPS_SCHEMA} TO {OPS_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA {OPS_SCHEMA} TO {OPS_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA {OPS_SCHEMA} GRANT SELECT ON TABLES TO {OPS_ROLE};
    """)


def verify_roles(cur) -> list[str]:
    """What the two roles can do beyond their mandate (empty list = as designed)."""
    problems: list[str] = []
    cur.execute(
        "SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s) AND (rolsuper OR rolbypassrls)",
        [BI_ROLE, OPS_ROLE],
    )
    problems += [f"role {r} is a superuser or bypasses row security" for (r,) in cur.fetchall()]
    checks = [
        (BI_ROLE, BI_SCHEMA, "USAGE", True), (BI_ROLE, BI_SCHEMA, "CREATE", False),
        (BI_ROLE, OPS_SCHEMA, "USAGE", False), (BI_ROLE, OPS_SCHEMA, "CREATE", False),
        (OPS_ROLE, OPS_SCHEMA, "USAGE", True), (OPS_ROLE, OPS_SCHEMA, "CREATE", False),
    ]
    for role, schema, priv, expected in checks:
        cur.execute("SELECT has_schema_privilege(%s, %s, %s)", [role, schema, priv])
        if cur.fetchone()[0] != expected:
            problems.append(f"role {role} {'lacks' if expected else 'has'} {priv} on schema {schema}")
    cur.execute(
        """SELECT r.role, t.schemaname, t.tablename, p.priv
           FROM pg_tables t
           CROSS JOIN (VALUES (%s), (%s)) r(role)
           CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'),
                              ('REFERENCES'), ('TRIGGER')) p(priv)
           WHERE t.schemaname IN (%s, %s) AND has_table_privilege(r.role,
                 quote_ident(t.schemaname) || '.' || quote_ident(t.tablename), p.priv)""",
        [BI_ROLE, OPS_ROLE, BI_SCHEMA, OPS_SCHEMA],
    )
    problems += [f"role {r} has {p} on {s}.{t}" for r, s, t, p in cur.fetchall()]
    return problems


def _copy_rows(cur, con, schema: str, table: str, select_sql: str, params: list) -> int:
    """Stream a DuckDB query into ``schema.table`` with COPY (CSV made by Arrow)."""
    import pyarrow.csv as pacsv
    from psycopg import sql

    reader = con.sql(select_sql, params=params).to_arrow_reader(BATCH_ROWS)
    names = reader.schema.names
    copy_sql = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    # Arrow quotes every string ("" = empty string) and leaves NULL unquoted-empty, which is
    # exactly how PostgreSQL's CSV COPY tells them apart.
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    rows = 0
    with cur.copy(copy_sql) as copy:
        for batch in reader:
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, options)
            copy.write(buf.getvalue())
            rows += batch.num_rows
    return rows


def publish_postgres(con, dsn: str, dates: list[dt.date], ops_source: str) -> dict[str, dict[str, int]]:
    """Replace ``dates`` in PostgreSQL from the staged serving file and ``ops_source``.

    Returns rows loaded per table and date.
    """
    import psycopg
    from psycopg import sql

    tables = [t for t in BI_TABLES if table_exists(con, "main", t, ALIAS)]
    ops_schema, ops_name = ops_source.split(".")
    wh = con.execute("SELECT current_database()").fetchone()[0]
    ops_columns = table_columns(con, wh, ops_schema, ops_name)
    loaded: dict[str, dict[str, int]] = {t: {} for t in [*tables, f"{OPS_SCHEMA}.{OPS_TABLE}"]}
    try:
        pg = psycopg.connect(dsn, connect_timeout=15, application_name="cartera-publish")
    except psycopg.Error as exc:
        raise PostgresPublishError(
            f"cannot connect to PostgreSQL {redacted_dsn(dsn)}: {str(exc).strip().splitlines()[0]}"
        ) from None
    try:
        with pg.transaction(), pg.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {BI_SCHEMA}")
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {OPS_SCHEMA}")
            for table in tables:
                _ensure_table(cur, BI_SCHEMA, table, table_columns(con, ALIAS, "main", table))
            if ops_columns:
                _ensure_table(cur, OPS_SCHEMA, OPS_TABLE, ops_columns)
            _ensure_roles_and_grants(cur)
            problems = verify_roles(cur)
            if problems:
                raise PostgresPublishError(
                    f"PostgreSQL roles are not as designed: {'; '.join(problems)}"
                )
        for day in dates:
            with pg.transaction(), pg.cursor() as cur:
                targets = [(BI_SCHEMA, t, f"SELECT * FROM {ALIAS}.main.{t} WHERE as_of_date = ?")
                           for t in tables]
                if ops_columns:
                    targets.append((OPS_SCHEMA, OPS_TABLE,
                                    f"SELECT * FROM {ops_source} WHERE as_of_date = ? ORDER BY priority"))
                for schema, table, select_sql in targets:
                    cur.execute(
                        sql.SQL("DELETE FROM {}.{} WHERE as_of_date = %s").format(
                            sql.Identifier(schema), sql.Identifier(table)
                        ),
                        [day],
                    )
                    key = table if schema == BI_SCHEMA else f"{schema}.{table}"
                    loaded[key][day.isoformat()] = _copy_rows(cur, con, schema, table, select_sql, [day])
    except psycopg.Error as exc:
        raise PostgresPublishError(
            f"PostgreSQL {redacted_dsn(dsn)} refused the publish: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        ) from None
    finally:
        pg.close()
    return loaded
