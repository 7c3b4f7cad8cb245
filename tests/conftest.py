"""Fixtures shared by every test folder."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_dagster_instance_context():
    """Keep tests independent of the order they run in.

    Dagster's test contexts (``build_schedule_context(instance=...)`` and friends) enter
    their instance, which sets a context variable naming it as the "current defs state
    storage"; when such a context is garbage-collected later, its exit restores that
    variable to an instance that a *later* test no longer has, and ``materialize()`` then
    fails with "Attempted to resolve undefined DagsterInstance weakref". Collecting garbage
    at the end of each test and clearing the variable makes that happen here, not later.
    """
    from dagster._core.storage.defs_state.base import _current_storage

    yield
    gc.collect()
    _current_storage.set(None)
