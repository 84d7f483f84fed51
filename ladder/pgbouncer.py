"""PgBouncer configuration as plain data, rendered by `pgbouncer/pgbouncer.ini.j2`.

Two logical databases front the RDS cluster: a read-write pool on the primary and a
read-only pool over every read replica (a comma-separated host list, which PgBouncer
1.17+ walks round-robin for new server connections). Settings that only newer PgBouncer
releases understand are rendered only when the configured version has them, so the file
always parses on the version the hosts actually install.

A third, session-mode database on the primary (`app_session`) is the route for
migration tools: advisory locks, SET and prepared DDL scripts need one server session
for the whole run, which transaction pooling does not give (review finding 27).

Passwords never pass through here. App logins are looked up per login through
`auth_user` + `auth_query` (ladder/credentials.py, db/bootstrap.sql), so a rotated app
password needs no PgBouncer reload; `auth_file` holds only PgBouncer's own users and is
written on the host at boot from Secrets Manager (`scaleladder-db pgbouncer-userlist`).
"""

from __future__ import annotations

from typing import Any

from ladder import credentials
from ladder.templates import render

TEMPLATE = "pgbouncer/pgbouncer.ini.j2"

RW_DATABASE = "app"
"""Logical database of the read-write pool (the RDS primary): the app's DATABASE_URL."""
RO_DATABASE = "app_ro"
"""Logical database of the read-only pool (all read replicas): the app's DATABASE_READ_URL."""
SESSION_DATABASE = "app_session"
"""Session-mode pool on the primary: what migration tools use (review finding 27)."""
SESSION_POOL_SIZE = 2
"""Server connections per PgBouncer host and login for `app_session` (migrations are rare)."""
CLIENT_TLS_PROTOCOLS = "secure"
"""TLS 1.2+ for app -> PgBouncer (PgBouncer's `secure` = tlsv1.2,tlsv1.3)."""

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
    The session-mode route for migrations always goes to the primary.
    """
    return {
        RW_DATABASE: primary_host,
        RO_DATABASE: ",".join(replica_hosts) if replica_hosts else primary_host,
        SESSION_DATABASE: primary_host,
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
        "pool_mode": "session" if name == SESSION_DATABASE else None,
        "pool_size": SESSION_POOL_SIZE if name == SESSION_DATABASE else None,
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
    auth_user: str = credentials.PGBOUNCER_AUTH_USER,
    auth_query: str = credentials.AUTH_QUERY,
    admin_users: list[str] = [credentials.PGBOUNCER_ADMIN_USER],  # noqa: B006 (never mutated)
    stats_users: list[str] = [credentials.PGBOUNCER_STATS_USER],  # noqa: B006 (never mutated)
    client_tls_sslmode: str = "require",
    client_tls_key_file: str = "/etc/pgbouncer/client-tls.key",
    client_tls_cert_file: str = "/etc/pgbouncer/client-tls.crt",
    unix_socket_dir: str = "/var/run/postgresql",
    logfile: str | None = None,
    pidfile: str | None = None,
) -> dict[str, Any]:
    """The plain dict `pgbouncer/pgbouncer.ini.j2` renders from (no secrets in it).

    `logfile`/`pidfile` stay unset by default: under systemd PgBouncer runs in the
    foreground and logs to the journal. The console users must be PgBouncer's own users:
    an app login or the master there would let any app host PAUSE or SHUTDOWN the pooler.
    """
    forbidden = {credentials.MASTER_USER, credentials.APP_RW_ROLE, credentials.APP_RO_ROLE,
                 credentials.PGBOUNCER_AUTH_USER, *credentials.APP_RW_LOGINS, *credentials.APP_RO_LOGINS}
    for key, users in (("admin_users", admin_users), ("stats_users", stats_users)):
        if bad := sorted(set(users) & forbidden):
            raise ValueError(f"PgBouncer {key} must be its dedicated console users "
                             f"({credentials.PGBOUNCER_ADMIN_USER}, {credentials.PGBOUNCER_STATS_USER}), "
                             f"not {', '.join(bad)}")
    if client_tls_sslmode not in ("require", "verify-ca", "verify-full"):
        raise ValueError(f"client_tls_sslmode {client_tls_sslmode!r}: app -> PgBouncer must use TLS "
                         "(require, verify-ca or verify-full)")
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
        "auth_user": auth_user,
        "auth_query": auth_query,
        "client_tls_sslmode": client_tls_sslmode,
        "client_tls_key_file": client_tls_key_file,
        "client_tls_cert_file": client_tls_cert_file,
        "client_tls_protocols": CLIENT_TLS_PROTOCOLS,
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
