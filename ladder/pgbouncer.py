"""PgBouncer configuration as plain data, rendered by `pgbouncer/pgbouncer.ini.j2`.

Two logical databases front the RDS cluster: a read-write pool on the primary and a
read-only pool over every read replica (a comma-separated host list, which PgBouncer
1.17+ walks round-robin for new server connections). Settings that only newer PgBouncer
releases understand are rendered only when the configured version has them, so the file
always parses on the version the hosts actually install.

Passwords never pass through here: `auth_file` is written on the host at boot from
Secrets Manager, outside any rendered template.
"""

from __future__ import annotations

from typing import Any

from ladder.templates import render

TEMPLATE = "pgbouncer/pgbouncer.ini.j2"

RW_DATABASE = "app"
"""Logical database of the read-write pool (the RDS primary): the app's DATABASE_URL."""
RO_DATABASE = "app_ro"
"""Logical database of the read-only pool (all read replicas): the app's DATABASE_READ_URL."""

FEATURE_MIN_VERSION: dict[str, str] = {
    # A comma-separated `host` list, used round-robin for new server connections.
    "host_list": "1.17",
    # Protocol-level prepared statements survive transaction pooling.
    "max_prepared_statements": "1.21",
    # Per-database choice of how new connections pick from a host list.
    "load_balance_hosts": "1.24",
    # Host-name check per host of a list. Before 1.25 verify-full matches the whole
    # comma-separated list against the certificate and every connection fails
    # (pgbouncer/pgbouncer#1300, fixed by #1303 in 1.25.0).
    "verify_full_host_list": "1.25",
}

MAX_PREPARED_STATEMENTS = 200
"""Prepared statements kept per server connection (PgBouncer 1.22+'s own default)."""
RESERVE_POOL_TIMEOUT = 3
"""Seconds a client waits before the reserve pool opens extra server connections."""


def parse_version(version: str) -> tuple[int, ...]:
    """`"1.18"` or `"1.18.0"` -> `(1, 18)` / `(1, 18, 0)`; compared as numbers, not text."""
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        raise ValueError(f"PgBouncer version {version!r} is not dotted numbers like '1.22'") from None


def supports(version: str, feature: str) -> bool:
    """Whether PgBouncer `version` understands `feature` (a key of FEATURE_MIN_VERSION)."""
    return parse_version(version) >= parse_version(FEATURE_MIN_VERSION[feature])


def server_tls_sslmode_for(version: str, sslmode: str, replica_hosts: list[str]) -> str:
    """The sslmode PgBouncer `version` can honour for these hosts.

    verify-full over a replica host list needs 1.25+; older releases get verify-ca,
    which still rejects any certificate not signed by the configured CA (the RDS CA)
    but skips the host-name match they cannot do for a list.
    """
    if sslmode == "verify-full" and len(replica_hosts) > 1 and not supports(version, "verify_full_host_list"):
        return "verify-ca"
    return sslmode


def database_hosts(primary_host: str, replica_hosts: list[str]) -> dict[str, str]:
    """Logical database -> `host` value: rw on the primary, ro on all replicas (comma list).

    Without replicas the ro pool falls back to the primary; `ini_data` then makes its
    sessions read-only so writes through DATABASE_READ_URL still fail as they would on a
    replica.
    """
    return {
        RW_DATABASE: primary_host,
        RO_DATABASE: ",".join(replica_hosts) if replica_hosts else primary_host,
    }


def _database(name: str, host: str, *, port: int, dbname: str, version: str,
              read_only_sessions: bool) -> dict[str, Any]:
    is_list = "," in host
    return {
        "name": name,
        "host": host,
        "port": port,
        "dbname": dbname,
        # Explicit even though round-robin is the default, so the file states the intent.
        "load_balance_hosts": "round-robin" if is_list and supports(version, "load_balance_hosts") else None,
        "connect_query": "SET default_transaction_read_only = on" if read_only_sessions else None,
    }


def ini_data(
    *,
    version: str,
    pool_mode: str,
    max_client_conn: int,
    default_pool_size: int,
    reserve_pool_size: int,
    primary_host: str,
    replica_hosts: list[str],
    db_port: int = 5432,
    dbname: str = "app",
    listen_addr: str = "0.0.0.0",
    listen_port: int = 6432,
    server_tls_sslmode: str = "verify-full",
    server_tls_ca_file: str = "/etc/pgbouncer/rds-ca.pem",
    auth_file: str = "/etc/pgbouncer/userlist.txt",
    admin_users: list[str] = ["pgbouncer_admin"],  # noqa: B006 (never mutated)
    stats_users: list[str] = ["pgbouncer_stats"],  # noqa: B006 (never mutated)
    unix_socket_dir: str = "/var/run/postgresql",
    logfile: str | None = None,
    pidfile: str | None = None,
) -> dict[str, Any]:
    """The plain dict `pgbouncer/pgbouncer.ini.j2` renders from (no secrets in it).

    `logfile`/`pidfile` stay unset by default: under systemd PgBouncer runs in the
    foreground and logs to the journal.
    """
    if len(replica_hosts) > 1 and not supports(version, "host_list"):
        raise ValueError(f"PgBouncer {version} cannot pool over several replicas: "
                         f"host lists need {FEATURE_MIN_VERSION['host_list']}+")
    hosts = database_hosts(primary_host, replica_hosts)
    databases = [
        _database(name, host, port=db_port, dbname=dbname, version=version,
                  read_only_sessions=(name == RO_DATABASE and not replica_hosts))
        for name, host in hosts.items()
    ]
    return {
        "version": version,
        "databases": databases,
        "listen_addr": listen_addr,
        "listen_port": listen_port,
        "unix_socket_dir": unix_socket_dir,
        "logfile": logfile,
        "pidfile": pidfile,
        "auth_type": "scram-sha-256",
        "auth_file": auth_file,
        "admin_users": ",".join(admin_users),
        "stats_users": ",".join(stats_users),
        "pool_mode": pool_mode,
        "max_client_conn": max_client_conn,
        "default_pool_size": default_pool_size,
        "reserve_pool_size": reserve_pool_size,
        "reserve_pool_timeout": RESERVE_POOL_TIMEOUT,
        "server_round_robin": 1 if len(replica_hosts) > 1 else 0,
        "server_lifetime": 3600,
        "server_idle_timeout": 600,
        "server_connect_timeout": 5,
        "server_login_retry": 5,
        "query_wait_timeout": 120,
        "client_login_timeout": 60,
        "ignore_startup_parameters": "extra_float_digits,options",
        "server_reset_query": "DISCARD ALL",
        "server_tls_sslmode": server_tls_sslmode_for(version, server_tls_sslmode, replica_hosts),
        "server_tls_sslmode_requested": server_tls_sslmode,
        "server_tls_ca_file": server_tls_ca_file,
        "server_tls_protocols": "secure",
        "max_prepared_statements": MAX_PREPARED_STATEMENTS if supports(version, "max_prepared_statements") else None,
    }


def render_ini(data: dict[str, Any]) -> str:
    """`pgbouncer.ini` text for `data` (from `ini_data`)."""
    return render(TEMPLATE, data)
