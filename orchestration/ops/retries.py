"""Which failures are retried, and how.

Two kinds of failure reach a step:

* **transient** -- a lock on the warehouse held briefly by another process (DuckDB
  ``IOException: Could not set lock on file``), a gzip file still being written
  (``Compressed file ended before the end-of-stream marker``), a drop whose files are still
  changing (:class:`TransientError`). Waiting and trying again fixes them, so the assets carry
  :data:`TRANSIENT_RETRY_POLICY` (3 more attempts, exponential backoff).
* **data / configuration** -- a bad file, a missing column, a control-total mismatch, a
  missing key. Retrying cannot help; they raise ``dagster.Failure(allow_retries=False)``
  and wait for a person.

Dagster's RetryPolicy retries *every* exception except ``Failure(allow_retries=False)``, so
an asset body wrapped in :func:`only_transient_retries` turns any other non-transient
exception into such a Failure (one line, the original kept as ``__cause__``) -- a library's
``Failure`` that still allows retries included (dagster-dbt raises one for every failed build).

Usage in an asset::

    @asset(..., retry_policy=TRANSIENT_RETRY_POLICY)
    def serving_warehouse(context, cartera):
        with only_transient_retries():
            ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, RetryPolicy, RetryRequested

# Seconds before the first retry (then x2, x4): 3 s -> 3, 6, 12 s. Tests shorten it.
RETRY_DELAY_SECONDS = float(os.environ.get("CARTERA_RETRY_DELAY_SECONDS", "3"))

TRANSIENT_RETRY_POLICY = RetryPolicy(
    max_retries=3, delay=RETRY_DELAY_SECONDS, backoff=Backoff.EXPONENTIAL
)

# Substrings of messages that mean "try again shortly", whatever wrapped them (DuckDB,
# dbt's log output inside a dagster-dbt error, gzip).
TRANSIENT_MESSAGES = (
    "could not set lock on file",       # DuckDB: another process holds the file
    "conflicting lock is held",          # DuckDB: same, longer wording
    "compressed file ended before the end-of-stream marker",  # gzip still being written
    "resource temporarily unavailable",
)


class TransientError(RuntimeError):
    """Raise for a condition that fixes itself (e.g. a landing file whose size still changes)."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 20:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True when waiting and retrying can fix ``exc`` (looks through its cause chain)."""
    for err in _chain(exc):
        if isinstance(err, Failure) and not err.allow_retries:
            return False  # someone already decided this needs a person
        if isinstance(err, (TransientError, BlockingIOError, InterruptedError)):
            return True
        text = str(err).lower()
        if any(marker in text for marker in TRANSIENT_MESSAGES):
            return True
    return False


def one_line(exc: BaseException, limit: int = 400) -> str:
    """``ExcType: first line of the message`` -- what an operator reads in an alert."""
    if isinstance(exc, Failure) and exc.description:
        text = exc.description
    else:
        message = str(exc).strip()
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def only_transient_retries() -> Iterator[None]:
    """Let transient errors through to the retry policy; make every other one final."""
    try:
        yield
    except RetryRequested:
        raise
    except Failure as exc:
        # A library's Failure leaves retries allowed (dagster-dbt raises one for every failed
        # dbt build, a failing data test included): only a transient one may go back.
        if not exc.allow_retries or is_transient(exc):
            raise
        text = exc.description or one_line(exc)
        _, parsed, errors = text.partition("Errors parsed from dbt logs:")  # dagster-dbt's layout
        raise Failure(description=f"dbt: {' '.join(errors.split())}" if parsed else text,
                      metadata=exc.metadata, allow_retries=False) from exc
    except Exception as exc:  # noqa: BLE001 - classification is the point
        if is_transient(exc):
            raise
        raise Failure(description=one_line(exc), allow_retries=False) from exc
