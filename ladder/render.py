"""`python -m ladder render STACK --out DIR`: every artefact a stack renders, as files.

From the offline plan (nothing is rendered twice, nothing differs from what the
program would hand AWS or Kubernetes):

    cloud-init/<host>.yaml            user data of each EC2 instance / launch template
    hosts/<host>/<path>               each file that user data writes (nginx configs,
                                      pgbouncer.ini, scripts, unit files)
    kubernetes/<NN>-<kind>-<ns>-<name>.yaml   one manifest per Kubernetes object
    kubernetes/files/<configmap>/<key>        ConfigMap entries that are files (pgbouncer.ini)
    kubernetes/helm-releases.yaml     the Helm releases (chart, version, repository, values);
                                      their manifests come from the charts at deploy time
    INDEX.txt                         what was written

Secrets stay "[secret]" (the plan's public form); no secret value is ever written.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from . import engine, userdata
from .cli import COMMANDS
from .mocks import k8s_autoname

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "spec", "data", "stringData", "binaryData", "type", "immutable")


def user_data(plan: engine.Plan) -> dict[str, str]:
    """Host name -> cloud-init text (instances carry it gzip in base64 as userDataBase64,
    launch templates as userData: ladder.userdata.encode)."""
    out = {}
    for r in plan.resources:
        if r.type == "aws:ec2/instance:Instance":
            if isinstance(r.inputs.get("userDataBase64"), str):
                out[r.name] = userdata.decode(r.inputs["userDataBase64"])
            elif isinstance(r.inputs.get("userData"), str):
                out[r.name] = r.inputs["userData"]
        elif r.type == "aws:ec2/launchTemplate:LaunchTemplate" and isinstance(r.inputs.get("userData"), str):
            out[r.name] = userdata.decode(r.inputs["userData"])
    return out


def written_files(cloud_init: str) -> dict[str, str]:
    """Path -> content of each `write_files` entry of a #cloud-config document."""
    if not cloud_init.startswith("#cloud-config"):
        return {}
    doc = yaml.safe_load(cloud_init) or {}
    return {f["path"]: f.get("content", "") for f in doc.get("write_files", []) if "path" in f}


def is_kubernetes_object(r: engine.Resource) -> bool:
    return r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE


def _whole_numbers(value: Any) -> Any:
    """The plan carries numbers as floats (protobuf Struct); manifests want 2, not 2.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _secret_keys(value: Any) -> Any:
    """A Secret's data marked secret as a whole: keep its keys (not secret), hide every value."""
    if isinstance(value, engine.Secret) and isinstance(value.value, dict):
        return {k: "[secret]" for k in value.value}
    return value


def manifest(r: engine.Resource) -> dict[str, Any]:
    """The object as the provider would send it (secret values as "[secret]"); an
    auto-named object gets the name the provider gives it."""
    raw = {k: _secret_keys(v) if k in ("data", "stringData") else v for k, v in r.inputs.items()}
    inputs = _whole_numbers(engine.public(raw))
    out = {k: inputs[k] for k in MANIFEST_KEYS if k in inputs}
    metadata = dict(out.get("metadata") or {})
    if "name" not in metadata:
        metadata["name"] = (r.state.get("metadata") or {}).get("name") or k8s_autoname(r.name)
    out["metadata"] = metadata
    return out


def k8s_manifests(plan: engine.Plan) -> list[dict[str, Any]]:
    return [manifest(r) for r in plan.resources if is_kubernetes_object(r)]


def helm_releases(plan: engine.Plan) -> list[dict[str, Any]]:
    out = []
    for r in plan.of_type(HELM_RELEASE):
        i = engine.public(r.inputs)
        out.append({"release": i.get("name", r.name), "namespace": i.get("namespace", "default"),
                    "chart": i.get("chart"), "version": i.get("version"),
                    "repository": (i.get("repositoryOpts") or {}).get("repo"), "values": i.get("values", {})})
    return out


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("_") or "_"


def artefacts(plan: engine.Plan) -> dict[str, str]:
    """Relative path -> text of every rendered artefact of the plan."""
    files: dict[str, str] = {}
    for host, text in user_data(plan).items():
        files[f"cloud-init/{_safe(host)}.yaml"] = text
        for path, content in written_files(text).items():
            files["/".join(["hosts", _safe(host), *(_safe(p) for p in PurePosixPath(path).parts if p != "/")])] = content
    for n, m in enumerate(k8s_manifests(plan), start=1):
        meta = m["metadata"]
        name = "-".join(_safe(p) for p in (m["kind"].lower(), meta.get("namespace", ""), meta["name"]) if p)
        files[f"kubernetes/{n:02d}-{name}.yaml"] = yaml.safe_dump(m, sort_keys=False)
        if m["kind"] == "ConfigMap":
            for key, value in (m.get("data") or {}).items():
                if isinstance(value, str) and "." in key:
                    files[f"kubernetes/files/{_safe(meta['name'])}/{_safe(key)}"] = value
    releases = helm_releases(plan)
    if releases:
        files["kubernetes/helm-releases.yaml"] = yaml.safe_dump(releases, sort_keys=False)
    return files


def write(plan: engine.Plan, out: Path) -> list[Path]:
    files = artefacts(plan)
    written = []
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n")
        written.append(path)
    index = out / "INDEX.txt"
    index.write_text(f"# {plan.project}-{plan.stack} (phase {plan.config.phase}): rendered artefacts\n"
                     + "".join(f"{p.relative_to(out)}\n" for p in written))
    return [*written, index]


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="preset stack name, e.g. phase6")
    p.add_argument("--out", required=True, type=Path, help="directory to write into (created if missing)")


def cmd_render(args: argparse.Namespace) -> int:
    plan = engine.run(args.stack)
    written = write(plan, args.out)
    for path in written:
        print(path)
    releases = helm_releases(plan)
    if releases:
        print("helm releases (rendered by their charts at deploy time): "
              + ", ".join(f"{r['release']} ({r['chart']} {r['version']})" for r in releases))
    return 0


COMMANDS["render"] = ("write every rendered artefact (user data, nginx, pgbouncer.ini, Kubernetes manifests)",
                      _args, cmd_render)
