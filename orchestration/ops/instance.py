"""The one persistent Dagster instance of a cartera checkout.

Runs started by the CLI, the schedule, the landing sensor and the UI all go to
``<project>/.dagster_home`` (the Makefile exports ``DAGSTER_HOME``; the CLI sets it when
unset), so ``make dev`` shows every run in one history.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.calendar import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"

# Written once when the folder has no dagster.yaml; an operator may edit it afterwards.
DAGSTER_YAML = """\
# Dagster instance settings for cartera (written by orchestration/ops/instance.py).
telemetry:
  enabled: false
# A failed date needs a person (data) or was already retried step by step (transient):
# never re-run a whole run automatically.
run_retries:
  enabled: false
# One writer on the DuckDB warehouse: runs launched by the schedule, the sensor or the UI
# wait in the queue until the previous one ends.
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project instance (unless set) and make sure it exists."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    return home
