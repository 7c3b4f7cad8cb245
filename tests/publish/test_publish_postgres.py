"""PostgreSQL target against a real throwaway server: rows, roles, re-runs."""

from __future__ import annotations

import duckdb
import psycopg
import pytest
from dagster import materialize

from publish_factory import DATES, rederive
from orchestration.publish.assets import publish_range, serving_warehouse
from orchestration.publish.postgres import PostgresPublishError

pytestmark = pytest.mark.postgres
BI_TABLES = ["segment_assignments", "segment_summary", "segment_migration", "run_audit"]


def _duck_rows(con, table, cols):
    return sorted(con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)


def _pg_rows(pg, table, cols):
    return sorted(pg.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)


def _assert_pg_matches_serving(cartera, dsn):
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    wh = duckdb.connect(str(cartera.warehouse_db), read_only=True)
    with psycopg.connect(dsn) as pg:
        for table in BI_TABLES:
            cols = [r[0] for r in srv.execute(f"DESCRIBE {table}").fetchall()]
            pg_cols = [r[0] for r in pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'cartera' "
                "AND table_name = %s ORDER BY ordinal_position", [table]).fetchall()]
            assert pg_cols == cols, table
            assert _pg_rows(pg, f"cartera.{table}", cols) == _duck_rows(srv, table, cols), table
        cols = [r[0] for r in wh.execute("DESCRIBE restricted.daily_actions").fetchall()]
        assert _pg_rows(pg, "cartera_ops.daily_actions", cols) == _duck_rows(wh, "restricted.daily_actions", cols)
        # The worklist never lands in the BI schema.
        assert pg.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'cartera' "
                          "AND column_name IN ('customer_id', 'full_name', 'phone', 'email')").fetchone()[0] == 0
    srv.close()
    wh.close()


def test_postgres_holds_the_same_rows_as_the_serving_file(cartera, pg_database, monkeypatch):
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", pg_database)
    result = publish_range(cartera, DATES[0].isoformat(), DATES[-1].isoformat(), "pg-run")
    assert result.postgres and "password" not in result.postgres
    _assert_pg_matches_serving(cartera, pg_database)


def test_republishing_a_date_replaces_it_in_postgres(cartera, pg_database, monkeypatch):
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", pg_database)
    publish_range(cartera, DATES[0].isoformat(), DATES[-1].isoformat(), "first")
    wh = duckdb.connect(str(cartera.warehouse_db))
    wh.execute("DELETE FROM marts.segment_assignments WHERE as_of_date = ? AND segment_code = 'AL_DIA'", [DATES[-1]])
    wh.close()
    rederive(cartera.warehouse_db)
    publish_range(cartera, DATES[-1].isoformat(), DATES[-1].isoformat(), "second")
    publish_range(cartera, DATES[-1].isoformat(), DATES[-1].isoformat(), "third")
    _assert_pg_matches_serving(cartera, pg_database)
    with psycopg.connect(pg_database) as pg:
        assert pg.execute("SELECT count(*) FROM cartera.segment_assignments WHERE as_of_date = %s "
                          "AND segment_code = 'AL_DIA'", [DATES[-1]]).fetchone()[0] == 0
        assert pg.execute("SELECT count(*) FROM cartera.run_audit WHERE as_of_date = %s",
                          [DATES[-1]]).fetchone()[0] == 3


def _login(server, dbname, role, member_of):
    with psycopg.connect(server.dsn(dbname), autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' IN ROLE {member_of}")
    return psycopg.connect(server.dsn(dbname, role, f"pw-{role}"), autocommit=True)


def test_cartera_bi_reads_cartera_only_and_cannot_write(cartera, postgres_server, pg_database, monkeypatch):
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", pg_database)
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "roles")
    dbname = pg_database.split("dbname=")[1].split()[0]

    with _login(postgres_server, dbname, "bi_analyst", "cartera_bi") as bi:
        for table in BI_TABLES:
            assert bi.execute(f"SELECT count(*) FROM cartera.{table}").fetchone()[0] > 0
        refused = [
            "SELECT * FROM cartera_ops.daily_actions",
            "INSERT INTO cartera.segment_summary (as_of_date, segment_code) VALUES ('2030-01-01', 'X')",
            "UPDATE cartera.segment_assignments SET dpd = 0",
            "DELETE FROM cartera.run_audit",
            "TRUNCATE cartera.segment_migration",
            "CREATE TABLE cartera.mine (x int)",
            "CREATE TABLE cartera_ops.mine (x int)",
            "CREATE SCHEMA mine",
            "CREATE TABLE public.mine (x int)",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(statement)

    with _login(postgres_server, dbname, "ops_agent", "cartera_ops") as ops:
        assert ops.execute("SELECT count(*) FROM cartera_ops.daily_actions").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ops.execute("DELETE FROM cartera_ops.daily_actions")


def test_grants_are_reapplied_and_an_overpowered_role_stops_the_publish(cartera, pg_database, monkeypatch):
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", pg_database)
    publish_range(cartera, DATES[0].isoformat(), DATES[0].isoformat(), "one")
    with psycopg.connect(pg_database, autocommit=True) as pg:
        pg.execute("GRANT INSERT, UPDATE ON cartera.segment_summary TO cartera_bi")  # a DBA's slip
    publish_range(cartera, DATES[1].isoformat(), DATES[1].isoformat(), "two")
    with psycopg.connect(pg_database, autocommit=True) as pg:
        assert pg.execute("SELECT has_table_privilege('cartera_bi', 'cartera.segment_summary', 'INSERT')"
                          ).fetchone()[0] is False
        # Write rights through membership of another role cannot be revoked by publish: it stops.
        pg.execute("DROP ROLE IF EXISTS sneaky_writer")
        pg.execute("CREATE ROLE sneaky_writer NOLOGIN")
        pg.execute("GRANT INSERT ON cartera.segment_summary TO sneaky_writer")
        pg.execute("GRANT sneaky_writer TO cartera_bi")
        try:
            with pytest.raises(PostgresPublishError, match="cartera_bi has INSERT on cartera.segment_summary"):
                publish_range(cartera, DATES[2].isoformat(), DATES[2].isoformat(), "three")
        finally:
            pg.execute("REVOKE sneaky_writer FROM cartera_bi")
            pg.execute("REVOKE ALL ON cartera.segment_summary FROM sneaky_writer")
            pg.execute("DROP ROLE sneaky_writer")
    srv = duckdb.connect(str(cartera.serving_db), read_only=True)
    assert srv.execute("SELECT count(DISTINCT as_of_date) FROM segment_assignments").fetchone()[0] == 2


def test_the_asset_metadata_names_postgres_without_its_password(cartera, pg_database, monkeypatch):
    monkeypatch.setenv("CARTERA_POSTGRES_DSN", pg_database)
    res = materialize([serving_warehouse], resources={"cartera": cartera}, partition_key=DATES[0].isoformat())
    meta = res.asset_materializations_for_node("serving_warehouse")[0].metadata
    password = pg_database.split("password=")[1].split()[0]
    assert meta["postgres"].value.startswith("cartera_admin@127.0.0.1:")
    assert all(password not in str(v.value) for v in meta.values())
