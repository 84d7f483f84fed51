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
