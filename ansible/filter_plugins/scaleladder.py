"""`scaleladder_render`: a repository template rendered by the program's own renderer.

`{{ ladder.reverse_proxy | scaleladder_render('nginx/reverse_proxy.conf.j2') }}` is byte for
byte what the program puts in user data for the same data (ladder/templates.py: the same
Jinja2 settings, StrictUndefined), so a day-2 render and a fresh host's file never differ.
The data comes from `python -m ladder ansible-vars` (ladder/ansible_vars.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def scaleladder_render(data: dict[str, Any], template: str) -> str:
    from ladder.templates import render

    return render(template, dict(data))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"scaleladder_render": scaleladder_render}
