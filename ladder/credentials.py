"""Database credentials: one source of truth for role names, secret layouts and the scripts.

Why this shape (DESIGN.md "Credentials", issue 11):
- The master password is ours (RDS refuses read replicas of a source whose master
  password it manages), kept in the `db-master` secret and used by the bootstrap alone.
- Privileges sit on NOLOGIN group roles (`app_rw`, `app_ro`); the app logs in as one of
  two alternating login roles per group. A rotation gives the *inactive* login a new
  password, points the secret at it, waits for every consumer to re-read the secret,
  then removes the old login's password: no consumer ever holds a password the database
  has already dropped, so no request fails.
- Login roles run as their group (`ALTER ROLE ... SET role`), so tables a migration
  creates are owned by the group, never by one of the alternating logins.
- PgBouncer looks app passwords up through `auth_query` (a SECURITY DEFINER function in
  its own schema that only `pgbouncer_auth` may execute), so a rotated app password needs
  no PgBouncer reload; only PgBouncer's own users sit in its auth file. RDS lets no one
  read pg_authid/pg_shadow (pgbouncer/pgbouncer#265, #446), so the function reads a copy
  of each current login's SCRAM verifier (AUTH_TABLE) that the bootstrap and rotation
  write together with the role's password: the very verifier the server holds, which
  SCRAM pass-through (PgBouncer 1.14+) needs to log in upstream.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MASTER_USER = "ladder_master"
"""RDS master user (rds_superuser on RDS). Used by the bootstrap and rotation only."""
DB_NAME = "app"
"""The application database (RDS `db_name`)."""
APP_SCHEMA = "app"
"""Schema the app's tables live in; owned by APP_RW_ROLE. Login roles' search_path."""

APP_RW_ROLE = "app_rw"
"""NOLOGIN group role: read-write on APP_SCHEMA (owner), no CREATEROLE, no superuser."""
APP_RO_ROLE = "app_ro"
"""NOLOGIN group role: USAGE + SELECT on APP_SCHEMA, present and future tables."""

APP_RW_LOGINS: tuple[str, str] = ("app_rw_a", "app_rw_b")
"""Alternating login roles of APP_RW_ROLE; a rotation moves the secret to the other one."""
APP_RO_LOGINS: tuple[str, str] = ("app_ro_a", "app_ro_b")
"""Alternating login roles of APP_RO_ROLE."""
LOGINS: dict[str, tuple[str, str]] = {APP_RW_ROLE: APP_RW_LOGINS, APP_RO_ROLE: APP_RO_LOGINS}
"""Group role -> its two alternating logins."""

INITIAL_APP_RW_LOGIN = APP_RW_LOGINS[0]
"""Login the `db-app` secret names when the program creates it."""
INITIAL_APP_RO_LOGIN = APP_RO_LOGINS[0]
"""Login the `db-app-ro` secret names when the program creates it."""

PGBOUNCER_AUTH_USER = "pgbouncer_auth"
"""Login PgBouncer uses to run `auth_query`; may only EXECUTE the lookup function."""
PGBOUNCER_ADMIN_USER = "pgbouncer_admin"
"""PgBouncer console admin (PAUSE/RELOAD/SHUTDOWN). A PgBouncer-only user: auth file, no DB role."""
PGBOUNCER_STATS_USER = "pgbouncer_stats"
"""PgBouncer console read-only user (SHOW ...). A PgBouncer-only user: auth file, no DB role."""

AUTH_SCHEMA = "pgbouncer"
"""Schema holding the lookup function (nothing else; USAGE for pgbouncer_auth only)."""
AUTH_FUNCTION = "get_auth"
"""SECURITY DEFINER lookup: (username) -> (usename, passwd) for app logins only."""
AUTH_TABLE = f"{AUTH_SCHEMA}.auth_credentials"
"""(usename, passwd): current logins' SCRAM verifiers; readable by the master only."""
AUTH_QUERY = f"SELECT usename, passwd FROM {AUTH_SCHEMA}.{AUTH_FUNCTION}($1)"
"""PgBouncer `auth_query` (it substitutes $1 with the client's user name)."""

BOOTSTRAP_LOCK_KEY = 727_711_011
"""pg_advisory_lock key shared by the bootstrap and the rotation, so they serialise."""

SECRET_MASTER = "db-master"
SECRET_APP = "db-app"
SECRET_APP_RO = "db-app-ro"
SECRET_PGBOUNCER = "db-pgbouncer"
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    SECRET_MASTER: ("username", "password"),
    SECRET_APP: ("username", "password"),
    SECRET_APP_RO: ("username", "password"),
    SECRET_PGBOUNCER: ("auth_user", "auth_password", "admin_user", "admin_password",
                       "stats_user", "stats_password"),
}
"""Secret (logical name) -> the JSON keys its SecretString holds."""

# Environment variables the bootstrap SQL reads with psql `\getenv` (values may be
# plain passwords or SCRAM-SHA-256 verifiers; the host script always sends verifiers).
BOOTSTRAP_ENV: dict[str, str] = {
    "app_rw_login": "LADDER_APP_RW_LOGIN",
    "app_rw_password": "LADDER_APP_RW_PASSWORD",
    "app_ro_login": "LADDER_APP_RO_LOGIN",
    "app_ro_password": "LADDER_APP_RO_PASSWORD",
    "pgbouncer_auth_password": "LADDER_PGBOUNCER_AUTH_PASSWORD",
}

BOOTSTRAP_SQL = ROOT / "db" / "bootstrap.sql"
"""Idempotent psql script run as MASTER_USER."""
HOST_SCRIPT = ROOT / "cloudinit" / "scaleladder-db"
"""Host wrapper: `bootstrap`, `rotate`, `refresh` subcommands (see its header)."""
BOOTSTRAP_SQL_HOST_PATH = "/usr/local/share/scaleladder/bootstrap.sql"
"""Where hosts install BOOTSTRAP_SQL (the script's default --sql)."""
HOST_SCRIPT_HOST_PATH = "/usr/local/bin/scaleladder-db"
"""Where hosts install HOST_SCRIPT."""


def other_login(login: str) -> str:
    """The alternating partner of `login` (app_rw_a <-> app_rw_b)."""
    for pair in LOGINS.values():
        if login in pair:
            return pair[1] if login == pair[0] else pair[0]
    raise ValueError(f"{login!r} is not an alternating app login ({sorted(LOGINS)})")
