"""Run-wide test setup: the plan directory the pytest-xdist workers share (tests/unit/plans.py)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# tests/unit/plans.py reads it; named here so this file loads without the engine (pulumi).
PLAN_CACHE_ENV = "SCALELADDER_PLAN_CACHE"

_made: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) makes the run's plan directory before the workers
    start; they inherit the variable. A directory the caller set is kept (a warm cache on purpose)."""
    if hasattr(config, "workerinput") or os.environ.get(PLAN_CACHE_ENV):
        return
    directory = tempfile.mkdtemp(prefix="scaleladder-plans-")
    os.environ[PLAN_CACHE_ENV] = directory
    _made.append(directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    for directory in _made:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(PLAN_CACHE_ENV, None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, a module whose tests share a module- or session-scoped fixture of
    ours (a PostgreSQL cluster, a Redis cluster, a moto server, one review run) runs on one
    worker, so the fixture starts once; every other test goes to whichever worker is free."""
    for item in items:
        if _shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def _shares_a_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(d.scope != "function" and d.baseid  # baseid "": pytest's own (tmp_path_factory, ...)
               for defs in info.name2fixturedefs.values() for d in defs)
