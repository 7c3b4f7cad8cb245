"""Fixtures for the report tests: a synthetic serving file and headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from orchestration.report.synthetic import build_serving_file

from .cdp import find_chromium

LOANS, DATES = 1500, 6

# Screenshots taken by the browser tests, listed at the end of the pytest run (CI log).
SCREENSHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS:
        terminalreporter.section("report screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))


@pytest.fixture
def keep_screenshot(tmp_path_factory):
    """Keep a screenshot where CI can find it: $CARTERA_ARTIFACTS_DIR if set, else pytest's
    session temp folder; its path is printed in the run's summary."""

    def keep(path: Path, name: str) -> Path:
        folder = Path(os.environ.get("CARTERA_ARTIFACTS_DIR") or tmp_path_factory.getbasetemp())
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        shutil.copy(path, target)
        SCREENSHOTS.append(target)
        return target

    return keep


@pytest.fixture(scope="session")
def serving_file(tmp_path_factory) -> tuple[Path, list]:
    """A serving.duckdb with the published tables, built once per session (read-only use)."""
    path = tmp_path_factory.mktemp("serving") / "serving.duckdb"
    dates = build_serving_file(path, loans=LOANS, dates=DATES, seed=11)
    return path, dates


@pytest.fixture
def warehouse(tmp_path, serving_file) -> Path:
    """A fresh warehouse folder holding a copy of the session's serving file."""
    wh = tmp_path / "warehouse"
    wh.mkdir()
    shutil.copy(serving_file[0], wh / "serving.duckdb")
    return wh


@pytest.fixture(scope="session")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        reason = "headless Chromium not found (/usr/bin/chromium; Debian package `chromium`)"
        if os.environ.get("CARTERA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and CARTERA_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return binary
