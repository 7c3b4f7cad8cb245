"""The quality tests reuse the ingest tests' drop writer and Dagster harness."""

from __future__ import annotations

import sys
from pathlib import Path

INGEST_TESTS = Path(__file__).resolve().parent.parent / "ingest"
if str(INGEST_TESTS) not in sys.path:
    sys.path.insert(0, str(INGEST_TESTS))
