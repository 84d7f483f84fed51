"""Where integration tests find the real servers, and what happens when one is missing.

Integration tests are part of the suite: a missing server is a broken setup, not a reason
to pass quietly, so the test fails and says how to fix it. SCALELADDER_SKIP_INTEGRATION=1
is the one explicit opt-out (then the test skips).
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

SKIP_ENV = "SCALELADDER_SKIP_INTEGRATION"
# Debian installs some servers (nginx, pgbouncer) in sbin, often not on a non-root PATH.
SBIN = "/usr/sbin:/usr/local/sbin"


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=SBIN)


def missing(names: list[str], what: str) -> NoReturn:
    """Fail (or skip, when asked to) because `names` are not installed."""
    listed = ", ".join(names)
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{listed} not installed and {SKIP_ENV}=1")
    pytest.fail(f"{listed} not found: run the project setup (bash scripts/setup) to install {what} "
                f"(or set {SKIP_ENV}=1 to skip integration tests)", pytrace=False)


def require(name: str, what: str = "the integration test servers") -> str:
    """Path of `name`, or fail/skip as above."""
    return which(name) or missing([name], what)
