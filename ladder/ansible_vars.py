"""`python -m ladder ansible-vars STACK`: what ansible/'s playbooks render and deploy, as JSON.

The playbooks never compute a config value themselves: the image comes from the stack
config through the program's own parser (so what `deploy.yml` rolls out and what `pulumi
up` records agree), and every template's data from the same functions the program renders
user data with (`ladder.userdata.reverse_proxy_data` / `load_balancer_data`,
`components.pgbouncer.host_ini_data`), so a day-2 render is the file a fresh host would get.

Values only AWS knows (the RDS addresses PgBouncer pools over, the transfer bucket's name)
come from the stack's outputs: `--outputs FILE` (`pulumi stack output --json`) or
`--from-pulumi` (runs that command). `--stack-file` reads another stack file than
`stacks/Pulumi.<STACK>.yaml` (the same parser; the tests use it), `--pgbouncer-layout`
a JSON object of `pgbouncer.ini` paths/ports for a sandbox (tests only: the program never
sets one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from . import edge, engine, metrics, userdata
from .cli import COMMANDS
from .config import ConfigError, StackConfig
from .names import name_prefix

IMMUTABLE_REASON = ("hosts in an Auto Scaling group are immutable: change scaleladder:app.image and run "
                    "`pulumi up` (the launch template's new version starts an instance refresh)")


def load_config(stack: str, stack_file: Path | None = None) -> StackConfig:
    """The validated config, exactly as `ladder plan` and the program read it."""
    if stack_file is None:
        values = engine.read_stack(stack)
    else:
        values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    return engine.validate_stack(values, stack=stack)


def pulumi_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json` of `stack` (secrets stay "[secret]": none is needed here)."""
    try:
        done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True,
                              text=True, cwd=engine.REPO, timeout=120, check=False)
    except FileNotFoundError:
        raise ConfigError(["the stack's outputs come from `pulumi stack output --json`: install the Pulumi CLI "
                           "or pass --outputs FILE"]) from None
    if done.returncode != 0:
        raise ConfigError([f"pulumi stack output --stack {stack} failed: {done.stderr.strip()}"])
    return json.loads(done.stdout or "{}")


def ansible_vars(stack: str, cfg: StackConfig, outputs: dict[str, Any] | None = None,
                 pgbouncer_layout: dict[str, Any] | None = None) -> dict[str, Any]:
    from components.ops import image_from_parameter, image_parameter_name
    from components.pgbouncer import host_ini_data

    outputs = outputs or {}
    project = engine.project_file()["name"]
    prefix = name_prefix(project, stack)
    app = cfg.app
    in_place = image_from_parameter(cfg.phase, cfg.load_balancer, cfg.climb.keep_single_host)
    nginx_mode = 2 <= cfg.phase <= 5 and cfg.load_balancer == "nginx"
    out: dict[str, Any] = {
        "stack": stack, "project": project, "phase": cfg.phase, "region": cfg.region, "name_prefix": prefix,
        "app": {"image": app.image, "port": app.port, "health_path": app.health_path},
        "deploy": {"in_place": in_place,
                   "image_parameter": image_parameter_name(prefix) if in_place else None,
                   "refusal": None if in_place else IMMUTABLE_REASON},
        # Phase 1's VM faces the clients (its nginx limits them); fleet app hosts sit behind the LB.
        "reverse_proxy": userdata.reverse_proxy_data(
            app.port, app.health_path, edge.nginx_rate_limit(cfg, "host") if cfg.phase == 1 else None,
            userdata.trusted_proxies(cfg.phase, cfg.network.cidr)),
        "load_balancer": (userdata.load_balancer_data([], app.health_path, edge.nginx_rate_limit(cfg, "lb"))
                          if nginx_mode else None),
        "app_host_port": userdata.NGINX_PORT,
        # An API host's /etc/scaleladder/metrics.json (with the ApiAnswers probe): hosts without an
        # Auto Scaling group keep the user data they booted with, so configure.yml writes it.
        "metrics_publisher_api": json.loads(metrics.publisher_config(
            cfg.region, stack, metrics.health_probe_url(app.health_path, userdata.NGINX_PORT))),
        "ssm_transfer_bucket": outputs.get("ssmTransferBucket"),
        "pgbouncer": None,
    }
    if cfg.uses_pgbouncer and cfg.phase <= 5 and outputs.get("dbAddress"):
        p = cfg.pgbouncer
        out["pgbouncer"] = host_ini_data(
            version=p.version, pool_mode=p.pool_mode, max_client_conn=p.max_client_conn,
            default_pool_size=p.default_pool_size, reserve_pool_size=p.reserve_pool_size,
            primary=outputs["dbAddress"], replicas=list(outputs.get("dbReplicaAddresses") or []),
            **(pgbouncer_layout or {}))
    return out


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="stack name, e.g. phase1")
    p.add_argument("--stack-file", type=Path, help="read this stack file instead of stacks/Pulumi.<STACK>.yaml")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--outputs", type=Path, help="the stack's outputs (`pulumi stack output --json` saved)")
    src.add_argument("--from-pulumi", action="store_true", help="run `pulumi stack output --json` for them")
    p.add_argument("--pgbouncer-layout", type=Path, help="JSON: pgbouncer.ini paths/ports of a sandbox (tests)")


def cmd_ansible_vars(args: argparse.Namespace) -> int:
    cfg = load_config(args.stack, args.stack_file)
    outputs = (json.loads(args.outputs.read_text()) if args.outputs
               else pulumi_outputs(args.stack) if args.from_pulumi else {})
    layout = json.loads(args.pgbouncer_layout.read_text()) if args.pgbouncer_layout else None
    json.dump(ansible_vars(args.stack, cfg, outputs, layout), sys.stdout, indent=2)
    print()
    return 0


COMMANDS["ansible-vars"] = ("what ansible/'s playbooks deploy and render for a stack (JSON)", _args,
                            cmd_ansible_vars)
