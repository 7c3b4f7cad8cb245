"""Fixtures for the publish tests: a factory-built warehouse and a throwaway PostgreSQL.

The PostgreSQL fixture is self-contained (no import from this folder) so it can move to
tests/conftest.py when another stage needs it. It starts a real server from Debian's
binaries (``/usr/lib/postgresql/15/bin``, override with ``CARTERA_PG_BIN``) in a temp
folder on a free loopback port, with password authentication over TCP. As root (CI) the
server runs as the ``postgres`` user via ``runuser``. Missing binaries skip the tests,
unless ``CARTERA_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from publish_factory import DATES, PII_KEY, build_warehouse

PG_BIN = Path(os.environ.get("CARTERA_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _unavailable(reason: str):
    if os.environ.get("CARTERA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CARTERA_REQUIRE_SERVICES=1: a missing service is a failure)")
    pytest.skip(reason)


@dataclass
class PgServer:
    host: str
    port: int
    admin_user: str
    admin_password: str

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        return (
            f"host={self.host} port={self.port} dbname={dbname} "
            f"user={user or self.admin_user} password={password or self.admin_password}"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL cluster for the whole session (stopped and deleted after)."""
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.exists() and pg_ctl.exists()):
        _unavailable(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run the server")
        prefix = ["runuser", "-u", "postgres", "--"]

    base = Path(tempfile.mkdtemp(prefix="cartera-pg-"))
    os.chmod(base, 0o700)
    if owner:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    password = secrets.token_urlsafe(16)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if owner:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, log = base / "data", base / "server.log"
    port = _free_port()

    def run(*args: str) -> None:
        proc = subprocess.run([*prefix, *args], cwd=base, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            extra = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {proc.stdout}{proc.stderr}{extra}")

    run(str(initdb), "-D", str(data), "-U", "cartera_admin", "--pwfile", str(pwfile),
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale")
    opts = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off")
    try:
        run(str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts, "start")
        yield PgServer("127.0.0.1", port, "cartera_admin", password)
    finally:
        subprocess.run([*prefix, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       cwd=base, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_server):
    """A fresh, empty database on the session server; yields its admin DSN."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield postgres_server.dsn(name)
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pii_key(monkeypatch) -> bytes:
    monkeypatch.setenv("CARTERA_PII_KEY", PII_KEY)
    monkeypatch.delenv("CARTERA_POSTGRES_DSN", raising=False)
    return PII_KEY.encode()


@pytest.fixture
def warehouse(tmp_path, pii_key):
    """tmp warehouse folder with cartera.duckdb built by the factory (600 loans, 3 dates)."""
    wh = tmp_path / "warehouse"
    wh.mkdir()
    return build_warehouse(wh / "cartera.duckdb", DATES, loans=600)


@pytest.fixture
def cartera(warehouse, tmp_path):
    from orchestration.config import CarteraResource

    return CarteraResource(landing_dir=str(tmp_path / "landing"), warehouse_dir=str(warehouse.path.parent))
