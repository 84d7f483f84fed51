"""Cloud-init user data, rendered from plain dicts (pure: tests feed the result to
`cloud-init schema`). The scripts it installs are static files beside the template."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .templates import ROOT, render

CLOUDINIT = ROOT / "cloudinit"


def _script(name: str) -> str:
    return (CLOUDINIT / name).read_text()


def app_user_data(data: Mapping[str, Any]) -> str:
    """User data for an app host: `roles` says whether it runs the API (behind nginx), the worker, or both."""
    return render("cloudinit/app.yaml.j2", {
        **data,
        "boot_script": _script("boot.sh"),
        "metrics_script": _script("host-metrics.sh"),
    })


def nginx_lb_user_data(nginx_conf: str) -> str:
    return render("cloudinit/nginx-lb.yaml.j2", {"nginx_conf": nginx_conf})


def template_path(name: str) -> Path:
    return CLOUDINIT / name
