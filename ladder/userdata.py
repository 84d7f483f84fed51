"""Cloud-init user data, rendered from plain dicts (pure: tests feed the result to
`cloud-init schema`). The scripts it installs are static files beside the template.

EC2 takes at most 16 KB of user data before base64 (EC2 User Guide, "Run commands when you
launch an EC2 instance with user data input"), so hosts get it gzip-compressed: cloud-init
uncompresses gzip user data before reading it (cloud-init docs, "User data formats": "Gzip
compressed content"). `encode` is deterministic (fixed header, no timestamp), so an unchanged
config plans unchanged user data and never replaces a host by itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .registry import RegistryLogin, login
from .templates import ROOT, render

if TYPE_CHECKING:
    from .config import StackConfig

CLOUDINIT = ROOT / "cloudinit"
MAX_BYTES = 16 * 1024
"""EC2's user-data limit, raw (before base64): the compressed size counts for gzip."""
NGINX_PORT = 80
# gzip header (RFC 1952): magic, deflate, no flags, MTIME 0, XFL 2 (best compression), OS 255
# (unknown): the same bytes on every machine (zlib's own header writes the build's OS).
_GZIP_HEADER = struct.pack("<BBBBLBB", 0x1F, 0x8B, 8, 0, 0, 2, 255)


def _script(name: str) -> str:
    """A shell script as hosts get it: without its comment-only lines (the shebang stays), so the
    repository file keeps its explanations without spending the 16 KB of user data on them."""
    lines = (CLOUDINIT / name).read_text().splitlines()
    return "\n".join(line for n, line in enumerate(lines)
                     if n == 0 or not line.lstrip().startswith("#")) + "\n"


def app_user_data(data: Mapping[str, Any]) -> str:
    """User data for an app host: `roles` says whether it runs the API (behind nginx), the worker, or both."""
    from . import metrics  # the signals contract: publisher config, container logs, journald

    return render("cloudinit/app.yaml.j2", {
        **data,
        "boot_script": _script("boot.sh"),
        "metrics_script": _script("host-metrics.sh"),
        # API hosts: the publisher also probes the health path through this host's nginx (ApiAnswers).
        "metrics_config": metrics.publisher_config(
            data["region"], data["env"]["SCALELADDER_STACK"],
            metrics.health_probe_url(data["health_path"], NGINX_PORT) if "api" in data["roles"] else ""),
        "docker_daemon_json": metrics.docker_daemon_json(data["region"], data["log_group"]),
        "journald_conf": metrics.journald_conf(),
        "statsd_env": metrics.statsd_env(),
    })


def db_fields(read_secret_arn: str, bootstrap_secret_arns: Mapping[str, str] | None) -> dict[str, Any]:
    """The app template's credential fields (H3): the read-only login's secret, and in phases
    1-2 (`bootstrap_secret_arns`, credentials.SECRET_* -> ARN) the bootstrap unit with the
    host script and SQL it runs (ladder/credentials.py)."""
    from . import credentials

    boot = dict(bootstrap_secret_arns or {})
    return {
        "db_read_secret_arn": read_secret_arn,
        "db_bootstrap": {key.replace("-", "_"): arn for key, arn in boot.items()},
        "db_script": shipped_script() if boot else "",
        "db_script_path": credentials.HOST_SCRIPT_HOST_PATH,
        "bootstrap_sql": shipped_sql() if boot else "",
        "bootstrap_sql_path": credentials.BOOTSTRAP_SQL_HOST_PATH,
    }


def shipped_script() -> str:
    """cloudinit/scaleladder-db as hosts get it: the same code, without the module docstring's
    body and the comment-only lines (about 1.5 KB of the 16 KB compressed user data). The
    repository file stays the documented one; a unit test checks both parse to the same code."""
    from . import credentials

    text = credentials.HOST_SCRIPT.read_text()
    head, _, rest = text.partition('"""')
    doc, _, code = rest.partition('"""')
    first = doc.splitlines()[0]
    lines = [line for line in code.splitlines() if not line.lstrip().startswith("#")]
    return f'{head}"""{first} (full header: the project\'s cloudinit/scaleladder-db)"""' + "\n".join(lines) + "\n"


def shipped_sql() -> str:
    """db/bootstrap.sql without its comment-only lines (same statements, fewer bytes)."""
    from . import credentials

    lines = credentials.BOOTSTRAP_SQL.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")) + "\n"


def nginx_lb_user_data(nginx_conf: str) -> str:
    return render("cloudinit/nginx-lb.yaml.j2", {"nginx_conf": nginx_conf})


def trusted_proxies(phase: int, vpc_cidr: str) -> list[str]:
    """Who may tell an app host's nginx the client's address and scheme: nobody in phase 1 (the
    VM faces the clients), the VPC range from phase 2 (the ALB's nodes or the nginx load
    balancer; behind CloudFront the client address is CloudFront's, whose ranges are not trusted)."""
    return [] if phase == 1 else [vpc_cidr]


def reverse_proxy_data(app_port: int, health_path: str, rate_limit: dict[str, int] | None = None,
                       proxies: Sequence[str] = ()) -> dict[str, Any]:
    """The plain dict `nginx/reverse_proxy.conf.j2` renders from (also what ansible/configure.yml
    and deploy.yml render it from, through `ladder ansible-vars`)."""
    return {
        "listen_port": NGINX_PORT, "upstream_host": "127.0.0.1", "upstream_port": app_port,
        "health_path": health_path, "client_max_body_size_mb": 10, "rate_limit": rate_limit,
        "trusted_proxies": list(proxies),
    }


def reverse_proxy_conf(app_port: int, health_path: str, rate_limit: dict[str, int] | None = None,
                       proxies: Sequence[str] = ()) -> str:
    """nginx on an API host, in front of the app container on the same host. `rate_limit`
    (ladder.edge) only where this nginx faces the clients: the phase-1 VM."""
    return render("nginx/reverse_proxy.conf.j2", reverse_proxy_data(app_port, health_path, rate_limit, proxies))


def load_balancer_data(upstreams: list[str], health_path: str,
                       rate_limit: dict[str, int] | None = None) -> dict[str, Any]:
    """The plain dict `nginx/load_balancer.conf.j2` renders from: nginx mode's LB host in front of
    `upstreams` ("ip:port" of the fixed app hosts); ansible/ re-renders it to drain one host."""
    return {"listen_port": 80, "upstreams": list(upstreams), "health_path": health_path,
            "max_fails": 3, "fail_timeout_s": 30, "keepalive": 32, "client_max_body_size_mb": 10,
            "rate_limit": rate_limit, "trusted_proxies": []}  # it faces the clients


def template_path(name: str) -> Path:
    return CLOUDINIT / name


def compress(text: str) -> bytes:
    """gzip of `text`, byte for byte the same for the same text (no mtime, fixed OS byte)."""
    data = text.encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; the gzip frame is ours
    body = deflate.compress(data) + deflate.flush()
    return _GZIP_HEADER + body + struct.pack("<LL", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def encode(text: str) -> str:
    """User data as EC2 wants it from us: gzip, then base64 (`aws.ec2.Instance.user_data_base64`;
    a launch template's `user_data` is base64 too)."""
    return base64.b64encode(compress(text)).decode()


def decode(encoded: str) -> str:
    """The cloud-init text of `encode`d user data (and of plain base64, for older plans)."""
    raw = base64.b64decode(encoded)
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


def size(text: str) -> int:
    """Bytes EC2 counts for `text` sent through `encode`."""
    return len(compress(text))


# --- the size check, from config alone (before any resource) --------------------------------

# Values only known once the tiers exist, in their real shapes at their longest: RDS
# identifiers 63 characters (RDS User Guide, "Naming constraints"), secret names as the
# program makes them (prefix + name, under 128), the stack name 100 (pulumi/pulumi backend
# validateStackName: `^[A-Za-z0-9_.-]{1,100}$`). The
# random parts are pseudo-random hex, so they compress no better than AWS's own.
_STACK_MAX = 100
_BOOTSTRAP_SECRETS = ("db-master", "db-app", "db-app-ro", "db-pgbouncer")  # credentials.SECRET_*


def _filler(label: str, length: int) -> str:
    out = ""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{label}{counter}".encode()).hexdigest()
        counter += 1
    return out[:length]


def _arn(label: str, region: str) -> str:
    return f"arn:aws:secretsmanager:{region}:{_filler(label + 'acct', 12)}:secret:{_filler(label, 120)}-{_filler(label + 'suffix', 6)}"


def _rds_host(label: str, region: str) -> str:
    return f"{_filler(label, 63)}.{_filler(label + 'id', 12)}.{region}.rds.amazonaws.com"


def largest_app_user_data(cfg: StackConfig) -> str:
    """The biggest app-host user data `cfg` can produce: API and worker on one host (phase 1's
    VM, a superset of the fleet's hosts), with every value not known yet at its longest."""
    from . import edge  # ladder.edge reads the config model, which imports this module

    app = cfg.app
    reg: RegistryLogin = login(app.image, app.registry_credentials_secret_arn)
    region = cfg.region
    return app_user_data({
        "region": region, "image": app.image, "app_port": app.port, "health_path": app.health_path,
        "roles": ["api", "worker"],
        "worker_command": list(app.worker_command), "asg_name": _filler("asg", _STACK_MAX + 40),
        "db_secret_arn": _arn("dbarn", region), "db_host": _rds_host("dbhost", region),
        "db_port": 5432, "db_name": _filler("dbname", 63), "db_read_host": _rds_host("dbread", region),
        "db_read_name": _filler("dbreadname", 63), "db_via_pgbouncer": cfg.uses_pgbouncer,
        "redis_secret_arn": _arn("redisarn", region),
        "redis_host": f"master.{_filler('redis', 40)}.{_filler('redisid', 6)}.{region}.cache.amazonaws.com",
        "redis_port": 6379, "redis_cluster": cfg.redis.cluster_mode != "disabled", "queue_prefix": app.queue_prefix,
        "queues": list(app.queues), "static_url": f"https://{_filler('cdn', 14)}.cloudfront.net",
        "env": {**app.env, "SCALELADDER_STACK": _filler("stack", _STACK_MAX)},
        "log_group": f"/scaleladder/{_filler('prefix', 60)}/containers",  # ladder.metrics.container_log_group
        "metrics_parameter": f"/{_filler('prefix', 60)}/metrics-publisher",  # components/signals.py
        "registry": reg.boot_env(),
        **db_fields(_arn("dbroarn", region),
                    None if cfg.uses_pgbouncer else {n: _arn(n, region) for n in _BOOTSTRAP_SECRETS}),
        "nginx_conf": reverse_proxy_conf(app.port, app.health_path, edge.nginx_rate_limit(cfg, "host")),
    })


def app_env_problems(cfg: StackConfig) -> list[str]:
    """`scaleladder:app.env` too big for EC2 user data even compressed (checked from config, so
    it is refused before any resource; the preflight checks the real plan again)."""
    from .config import key

    if cfg.phase == 6:  # pods get app.env from a ConfigMap, no app host
        return []
    text = largest_app_user_data(cfg)
    compressed = size(text)
    if compressed <= MAX_BYTES:
        return []
    env_bytes = sum(len(k) + len(v) + 2 for k, v in cfg.app.env.items())
    return [f"{key('app.env')}: {len(cfg.app.env)} variables ({env_bytes} bytes) make the app hosts' user data "
            f"{compressed} bytes gzip-compressed; EC2 takes at most {MAX_BYTES} (16 KB, EC2 User Guide); "
            "shorten or drop variables, or keep large values elsewhere (S3, SSM Parameter Store)"]
