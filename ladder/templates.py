"""Renders the repo's Jinja2 templates from plain dicts.

Templates stay free of Python-only helpers (Ansible renders the same files),
and undefined variables are errors, so a missing value never renders blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

ROOT = Path(__file__).resolve().parent.parent

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(ROOT)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(template: str, data: Mapping[str, Any]) -> str:
    """Render `template` (a path relative to the repo root, e.g. `nginx/reverse_proxy.conf.j2`)."""
    return _env.get_template(template).render(**data)
