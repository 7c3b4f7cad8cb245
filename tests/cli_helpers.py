"""Running the `cartera` command the way an operator does: a subprocess, a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TEST_PII_KEY = "test-key-for-cli-tests-0123456789"


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """os.environ without CARTERA_* settings, a private Dagster instance, the test PII key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTERA_", "DAGSTER_HOME"))}
    env.update(DAGSTER_HOME=str(tmp / "dagster_home"), CARTERA_PII_KEY=TEST_PII_KEY,
               CARTERA_RETRY_DELAY_SECONDS="0.2", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def cartera(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *map(str, args)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure contract: non-zero exit, exactly one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
