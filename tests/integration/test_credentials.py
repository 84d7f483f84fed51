"""Database credentials on real servers: db/bootstrap.sql through `scaleladder-db`, PgBouncer
from the rendered config with auth_query, and the rotation procedure under load.

An RDS-like primary (the master is a CREATEROLE member of `rds_superuser`, not a
superuser, and owns the app database) with one streaming replica, TLS only; Secrets
Manager is moto_server. Tests run in file order: the bootstrap first (on a fresh
cluster, so concurrent runs race to create the roles), the rotation last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ladder import credentials as cred
from ladder import pgbouncer as pgb
from tests.integration import credentials_harness as h
from tests.integration.pgcluster import (
    SERVICE_USER,
    PgBouncer,
    PgCluster,
    installed_pgbouncer_version,
    pg_cluster,
    pgbouncer_ini_data,
    running_pgbouncer,
    service_workdir,
)

CONCURRENT_BOOTSTRAPS = 4


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster(replicas=1, tls=True, rds_like=True) as c:
        yield c


@pytest.fixture(scope="module")
def aws(cluster: PgCluster) -> Iterator[h.Aws]:
    with h.moto_server() as server:
        h.create_secrets(server, cluster)
        yield server


def values(aws: h.Aws) -> dict[str, dict[str, str]]:
    return aws.values


ROLE_STATE_SQL = [
    "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
    "rolbypassrls, rolpassword IS NOT NULL FROM pg_authid "
    "WHERE rolname ~ '^(app_|pgbouncer_|ladder_)' ORDER BY 1",
    "SELECT g.rolname, m.rolname, a.admin_option FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
    "JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2",
    "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1",
    "SELECT nspname, nspowner::regrole, nspacl FROM pg_namespace WHERE nspname IN ('app', 'pgbouncer', 'public') "
    "ORDER BY 1",
    "SELECT datacl FROM pg_database WHERE datname = 'app'",
    "SELECT proname, proowner::regrole, prosecdef, proconfig, proacl FROM pg_proc WHERE proname = 'get_auth'",
    "SELECT usename FROM pgbouncer.auth_credentials ORDER BY 1",
    "SELECT defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype, defaclacl FROM pg_default_acl "
    "ORDER BY 1, 2, 3",
]


def role_state(cluster: PgCluster) -> list[str]:
    return [cluster.primary.psql(sql, db="app") for sql in ROLE_STATE_SQL]


@pytest.fixture(scope="module")
def bootstrapped(cluster: PgCluster, aws: h.Aws) -> dict[str, Any]:
    """CONCURRENT_BOOTSTRAPS runs started together on the fresh cluster, then one more."""
    procs = [h.script(aws, *h.bootstrap_args(aws, cluster), background=True) for _ in range(CONCURRENT_BOOTSTRAPS)]
    outputs = [(p.wait(timeout=h.SCRIPT_TIMEOUT), p.stdout.read() if p.stdout else "") for p in procs]
    after_concurrent = role_state(cluster)
    again = h.script(aws, *h.bootstrap_args(aws, cluster))
    cluster.wait_replayed()
    return {"concurrent": outputs, "after_concurrent": after_concurrent, "again": again,
            "after_again": role_state(cluster)}


@pytest.fixture(scope="module")
def bouncer(cluster: PgCluster, aws: h.Aws, bootstrapped: dict[str, Any]) -> Iterator[PgBouncer]:
    """PgBouncer from the rendered config, its auth file written by the script."""
    workdir = service_workdir("scaleladder-cred-bouncer-")
    try:
        data = pgbouncer_ini_data(cluster, workdir, version=installed_pgbouncer_version(cluster.bins),
                                  admin_users=[cred.PGBOUNCER_ADMIN_USER], stats_users=[cred.PGBOUNCER_STATS_USER])
        h.write_userlist(aws, Path(data["auth_file"]), SERVICE_USER if os.geteuid() == 0 else None)
        with running_pgbouncer(cluster, data, workdir, console_passwords=h.console_passwords(values(aws))) as b:
            yield b
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def login(aws: h.Aws, secret: str) -> tuple[str, str]:
    value = aws.get(secret)
    return value["username"], value["password"]


def direct(cluster: PgCluster, user: str, password: str, sql: str,
           host: str | None = None) -> subprocess.CompletedProcess[str]:
    """`sql` as `user` straight to PostgreSQL over verified TLS (phases 1-2's path)."""
    assert cluster.tls
    env = {**os.environ, "PGPASSWORD": password, "PGSSLMODE": "verify-full",
           "PGSSLROOTCERT": str(cluster.tls.ca_file), "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run([cluster.bins.psql, "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
                           "-h", host or cluster.primary.host, "-p", str(cluster.primary.port),
                           "-U", user, "-d", "app", "-c", sql], capture_output=True, text=True, env=env, timeout=60)


def master(cluster: PgCluster, sql: str) -> subprocess.CompletedProcess[str]:
    assert cluster.master_password
    return direct(cluster, cred.MASTER_USER, cluster.master_password, sql)


# ---------------------------------------------------------------- bootstrap


def test_concurrent_bootstraps_all_succeed_and_converge(bootstrapped: dict[str, Any]) -> None:
    for code, output in bootstrapped["concurrent"]:
        assert code == 0, output
    assert bootstrapped["again"].returncode == 0, bootstrapped["again"].stdout + bootstrapped["again"].stderr
    # A later run changes nothing the concurrent ones left.
    assert bootstrapped["after_again"] == bootstrapped["after_concurrent"]


def test_bootstrap_creates_the_contracted_roles(bootstrapped: dict[str, Any]) -> None:
    roles = {row.split("|")[0]: row.split("|")[1:] for row in bootstrapped["after_again"][0].splitlines()}
    # super, inherit, createrole, createdb, login, replication, bypassrls, has password
    assert roles[cred.APP_RW_ROLE] == ["f", "t", "f", "f", "f", "f", "f", "f"]
    assert roles[cred.APP_RO_ROLE] == ["f", "t", "f", "f", "f", "f", "f", "f"]
    assert roles[cred.INITIAL_APP_RW_LOGIN] == ["f", "f", "f", "f", "t", "f", "f", "t"]
    assert roles[cred.other_login(cred.INITIAL_APP_RW_LOGIN)] == ["f", "f", "f", "f", "t", "f", "f", "f"]
    assert roles[cred.PGBOUNCER_AUTH_USER][4] == "t"
    members = set(bootstrapped["after_again"][1].splitlines())
    for group, logins in cred.LOGINS.items():
        for name in logins:
            assert f"{group}|{name}|f" in members
    # Only the current logins are in PgBouncer's lookup table.
    assert bootstrapped["after_again"][6].splitlines() == sorted([cred.INITIAL_APP_RO_LOGIN,
                                                                  cred.INITIAL_APP_RW_LOGIN])


def test_bootstrap_output_holds_no_password(bootstrapped: dict[str, Any], aws: h.Aws) -> None:
    printed = "".join(out for _, out in bootstrapped["concurrent"]) + bootstrapped["again"].stdout
    printed += bootstrapped["again"].stderr
    for value in values(aws).values():
        for key, secret in value.items():
            if "password" in key:
                assert secret not in printed
    assert "SCRAM-SHA-256$" not in printed


def test_bootstrap_refuses_a_plain_password(cluster: PgCluster, aws: h.Aws, bootstrapped: dict[str, Any]) -> None:
    assert cluster.tls and cluster.master_password
    env = {**os.environ, "PGHOST": cluster.primary.host, "PGPORT": str(cluster.primary.port), "PGDATABASE": "app",
           "PGUSER": cred.MASTER_USER, "PGPASSWORD": cluster.master_password, "PGSSLMODE": "verify-full",
           "PGSSLROOTCERT": str(cluster.tls.ca_file), "LADDER_APP_RW_LOGIN": "app_rw_a",
           "LADDER_APP_RW_PASSWORD": "plain-text-password", "LADDER_APP_RO_LOGIN": "app_ro_a",
           "LADDER_APP_RO_PASSWORD": "plain-text-password", "LADDER_PGBOUNCER_AUTH_PASSWORD": "plain"}
    before = role_state(cluster)
    done = subprocess.run([cluster.bins.psql, "-X", "-f", str(cred.BOOTSTRAP_SQL)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode != 0
    assert "not a SCRAM-SHA-256 verifier" in done.stderr
    assert "plain-text-password" not in done.stdout + done.stderr
    assert role_state(cluster) == before


# ---------------------------------------------------------------- least privilege


def test_app_login_cannot_create_roles(cluster: PgCluster, aws: h.Aws, bouncer: PgBouncer) -> None:
    user, password = login(aws, cred.SECRET_APP)
    done = direct(cluster, user, password, "CREATE ROLE intruder")
    assert done.returncode != 0 and "permission denied to create role" in done.stderr
    via = bouncer.psql("CREATE ROLE intruder", db=pgb.RW_DATABASE, user=user, password=password)
    assert via.returncode != 0 and "permission denied to create role" in via.stderr


def test_app_login_cannot_read_a_schema_it_does_not_own(cluster: PgCluster, aws: h.Aws,
                                                         bootstrapped: dict[str, Any]) -> None:
    setup = master(cluster, "CREATE SCHEMA IF NOT EXISTS ops; CREATE TABLE IF NOT EXISTS ops.billing (x int)")
    assert setup.returncode == 0, setup.stderr
    for secret in (cred.SECRET_APP, cred.SECRET_APP_RO):
        user, password = login(aws, secret)
        done = direct(cluster, user, password, "SELECT count(*) FROM ops.billing")
        assert done.returncode != 0 and "permission denied for schema ops" in done.stderr
        # Nor the lookup table or function (the verifiers of every login).
        table = direct(cluster, user, password, "SELECT count(*) FROM pgbouncer.auth_credentials")
        assert table.returncode != 0 and "permission denied" in table.stderr
        fn = direct(cluster, user, password, "SELECT * FROM pgbouncer.get_auth('app_rw_a')")
        assert fn.returncode != 0 and "permission denied" in fn.stderr


def test_app_login_cannot_use_the_pgbouncer_console(aws: h.Aws, bouncer: PgBouncer) -> None:
    user, password = login(aws, cred.SECRET_APP)
    for command in ("SHOW POOLS", "SHUTDOWN"):
        done = bouncer.psql(command, db="pgbouncer", user=user, password=password, connect_timeout=5)
        assert done.returncode != 0, f"{user} ran {command} on the console"
    assert bouncer.alive()
    # The stats user may look but not act; the admin may act.
    stats = cred.PGBOUNCER_STATS_USER
    assert bouncer.psql("SHOW POOLS", db="pgbouncer", user=stats).returncode == 0
    refused = bouncer.psql("SHUTDOWN", db="pgbouncer", user=stats)
    assert refused.returncode != 0 and bouncer.alive()
    assert bouncer.psql("SHOW POOLS", db="pgbouncer", user=cred.PGBOUNCER_ADMIN_USER).returncode == 0


def test_migrations_tables_belong_to_the_group_and_reach_the_ro_pool(cluster: PgCluster, aws: h.Aws,
                                                                     bouncer: PgBouncer) -> None:
    user, password = login(aws, cred.SECRET_APP)
    bouncer.query("CREATE TABLE rotation_log (id bigserial PRIMARY KEY, consumer text NOT NULL, "
                  "login name NOT NULL DEFAULT session_user, at timestamptz NOT NULL DEFAULT now()); "
                  "INSERT INTO rotation_log (consumer) VALUES ('migration')",
                  db=pgb.SESSION_DATABASE, user=user, password=password)
    owner = cluster.primary.psql("SELECT tableowner || '.' || schemaname FROM pg_tables "
                                 "WHERE tablename = 'rotation_log'", db="app")
    assert owner == f"{cred.APP_RW_ROLE}.{cred.APP_SCHEMA}"
    # PgBouncer resets a session-mode server connection (DISCARD ALL) before the next
    # client gets it: the login's role-level `role` setting must survive that.
    for _ in range(3):
        assert bouncer.query("SELECT current_user", db=pgb.SESSION_DATABASE, user=user,
                             password=password) == cred.APP_RW_ROLE
    modes = {row[0]: row for row in bouncer.console("SHOW DATABASES")}
    assert "session" in modes[pgb.SESSION_DATABASE]
    cluster.wait_replayed()
    ro_user, ro_password = login(aws, cred.SECRET_APP_RO)
    # Created after the bootstrap, yet readable by app_ro: the default privileges.
    assert bouncer.query("SELECT count(*) FROM rotation_log", db=pgb.RO_DATABASE,
                         user=ro_user, password=ro_password) == "1"


def test_ro_login_writes_fail_on_the_ro_pool(aws: h.Aws, bouncer: PgBouncer, cluster: PgCluster) -> None:
    ro_user, ro_password = login(aws, cred.SECRET_APP_RO)
    done = bouncer.psql("INSERT INTO rotation_log (consumer) VALUES ('ro')", db=pgb.RO_DATABASE,
                        user=ro_user, password=ro_password)
    assert done.returncode != 0 and "read-only transaction" in done.stderr
    # Even straight on the primary: no privilege and a read-only default.
    primary = direct(cluster, ro_user, ro_password, "INSERT INTO rotation_log (consumer) VALUES ('ro')")
    assert primary.returncode != 0


def test_client_tls_is_required(aws: h.Aws, bouncer: PgBouncer) -> None:
    user, password = login(aws, cred.SECRET_APP)
    plain = bouncer.psql("SELECT 1", db=pgb.RW_DATABASE, user=user, password=password, sslmode="disable")
    assert plain.returncode != 0
    tls = bouncer.psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", db=pgb.RW_DATABASE,
                       user=user, password=password, sslmode="require")
    assert tls.returncode == 0, tls.stderr


def test_auth_lookup_refuses_the_master_and_rds_superusers(cluster: PgCluster, aws: h.Aws,
                                                           bouncer: PgBouncer) -> None:
    """Even with their verifiers in the lookup table, get_auth() hands out only plain app
    logins; PgBouncer therefore refuses the master with its right password."""
    mod = h.load_script()
    sneaky, plain = "app_rw_sneaky", "app_rw_plain"
    cluster.primary.psql(f"CREATE ROLE {sneaky} LOGIN IN ROLE app_rw, rds_superuser; "
                         f"CREATE ROLE {plain} LOGIN IN ROLE app_rw", db="app")
    try:
        rows = ", ".join(f"('{name}', '{mod.scram_verifier('x')}')" for name in (cred.MASTER_USER, sneaky, plain))
        cluster.primary.psql(f"INSERT INTO pgbouncer.auth_credentials VALUES {rows}", db="app")
        auth = values(aws)[cred.SECRET_PGBOUNCER]
        for name, expected in ((cred.MASTER_USER, ""), (sneaky, ""), (plain, plain)):
            got = direct(cluster, auth["auth_user"], auth["auth_password"],
                         f"SELECT usename FROM pgbouncer.get_auth('{name}')")
            assert got.returncode == 0, got.stderr
            assert got.stdout.strip() == expected, name
        assert cluster.master_password
        refused = bouncer.psql("SELECT 1", db=pgb.RW_DATABASE, user=cred.MASTER_USER,
                               password=cluster.master_password, connect_timeout=5)
        assert refused.returncode != 0
    finally:
        cluster.primary.psql(f"DELETE FROM pgbouncer.auth_credentials WHERE usename IN "
                             f"('{cred.MASTER_USER}', '{sneaky}', '{plain}'); DROP ROLE {sneaky}; DROP ROLE {plain}",
                             db="app")


# ---------------------------------------------------------------- rotation


def test_rotation_under_load_fails_nothing_and_retires_the_old_password(
        cluster: PgCluster, aws: h.Aws, bouncer: PgBouncer) -> None:
    old_user, old_password = login(aws, cred.SECRET_APP)
    run = h.rotate_under_load(aws, cluster, bouncer, consumers=4, rate=8.0, refresh_s=1.0, min_wait=4.0)
    assert run.rotate_code == 0, run.rotate_output
    assert run.new_login == cred.other_login(old_user)
    assert run.failures == [], run.failures[:5]
    assert run.consumers_on_new == run.consumers
    assert run.transactions > 50
    new_user, new_password = login(aws, cred.SECRET_APP)
    assert new_password != old_password
    # Both logins wrote during the run: the switch happened under load.
    logins = cluster.primary.psql("SELECT DISTINCT login FROM app.rotation_log "
                                  "WHERE consumer <> 'migration' ORDER BY 1", db="app").splitlines()
    assert logins == sorted([old_user, new_user])
    # The old password is refused, straight and through PgBouncer; the new one works.
    assert direct(cluster, old_user, old_password, "SELECT 1").returncode != 0
    assert bouncer.psql("SELECT 1", db=pgb.RW_DATABASE, user=old_user, password=old_password,
                        connect_timeout=5).returncode != 0
    # The new login may change rows and tables the old one created (the group owns them).
    assert bouncer.query("UPDATE rotation_log SET consumer = consumer; ALTER TABLE rotation_log "
                         "ADD COLUMN IF NOT EXISTS note text; SELECT 1", db=pgb.RW_DATABASE,
                         user=new_user, password=new_password) == "1"
    for secret in (new_password, old_password):
        assert secret not in run.rotate_output
    print(run)


def test_a_second_rotation_alternates_back(cluster: PgCluster, aws: h.Aws, bouncer: PgBouncer) -> None:
    first_user, first_password = login(aws, cred.SECRET_APP)
    run = h.rotate_under_load(aws, cluster, bouncer, consumers=2, rate=5.0, refresh_s=1.0, min_wait=3.0,
                              warmup=1.0, cooldown=1.0)
    assert run.rotate_code == 0, run.rotate_output
    assert run.failures == []
    assert run.new_login == cred.other_login(first_user) == cred.INITIAL_APP_RW_LOGIN
    assert direct(cluster, first_user, first_password, "SELECT 1").returncode != 0


def test_a_rotation_left_half_done_is_finished_before_the_next(cluster: PgCluster, aws: h.Aws,
                                                               bouncer: PgBouncer) -> None:
    """An interrupted rotation leaves both logins with a password. The next run must not
    flip back onto the login every consumer uses: it retires the leftover first."""
    current_user, current_password = login(aws, cred.SECRET_APP)
    leftover_user, leftover_password = cred.other_login(current_user), "leftover-password-1"
    mod = h.load_script()
    verifier = mod.scram_verifier(leftover_password)
    setup = master(cluster, f"ALTER ROLE {leftover_user} PASSWORD '{verifier}'; "
                            f"INSERT INTO pgbouncer.auth_credentials VALUES ('{leftover_user}', '{verifier}')")
    assert setup.returncode == 0, setup.stderr
    assert direct(cluster, leftover_user, leftover_password, "SELECT 1").returncode == 0
    done = h.script(aws, "rotate", *h.conn_args(cluster), "--master-secret", aws.arns[cred.SECRET_MASTER],
                    "--secret", aws.arns[cred.SECRET_APP], "--min-wait", "0", "--max-wait", "10",
                    "--watch-pgbouncer", f"{bouncer.host}:{bouncer.port}",
                    "--pgbouncer-secret", aws.arns[cred.SECRET_PGBOUNCER])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unfinished rotation" in done.stdout
    new_user, new_password = login(aws, cred.SECRET_APP)
    assert new_user == leftover_user and new_password != leftover_password
    assert direct(cluster, leftover_user, leftover_password, "SELECT 1").returncode != 0
    assert direct(cluster, current_user, current_password, "SELECT 1").returncode != 0
    assert direct(cluster, new_user, new_password, "SELECT 1").returncode == 0
    assert cluster.primary.psql("SELECT usename FROM pgbouncer.auth_credentials WHERE usename LIKE 'app_rw%'",
                                db="app") == new_user


def test_a_bootstrap_after_a_rotation_keeps_the_current_login(cluster: PgCluster, aws: h.Aws) -> None:
    """New hosts bootstrap again at any time (and after a restore): the login the secret
    names keeps working, the retired one stays without a password."""
    user, password = login(aws, cred.SECRET_APP)
    done = h.script(aws, *h.bootstrap_args(aws, cluster))
    assert done.returncode == 0, done.stdout + done.stderr
    assert direct(cluster, user, password, "SELECT 1").returncode == 0
    has_password = cluster.primary.psql(
        f"SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '{cred.other_login(user)}'")
    assert has_password == "f"


def test_rotate_master_changes_the_master_password_and_bootstrap_follows(cluster: PgCluster, aws: h.Aws) -> None:
    """Last: it changes the master password the other tests use."""
    old = aws.get(cred.SECRET_MASTER)["password"]
    done = h.script(aws, "rotate-master", *h.conn_args(cluster), "--master-secret", aws.arns[cred.SECRET_MASTER])
    assert done.returncode == 0, done.stdout + done.stderr
    new = aws.get(cred.SECRET_MASTER)["password"]
    assert new != old and new not in done.stdout + done.stderr
    assert direct(cluster, cred.MASTER_USER, old, "SELECT 1").returncode != 0
    assert direct(cluster, cred.MASTER_USER, new, "SELECT 1").returncode == 0
    cluster.master_password = new
    again = h.script(aws, *h.bootstrap_args(aws, cluster))
    assert again.returncode == 0, again.stdout + again.stderr


def test_script_exit_codes(aws: h.Aws, cluster: PgCluster) -> None:
    assert h.script(aws, "rotate", "--host", "x").returncode == 1  # usage
    missing = h.script(aws, "rotate", *h.conn_args(cluster), "--master-secret", "no-such-secret",
                       "--secret", aws.arns[cred.SECRET_APP])
    assert missing.returncode == 2 and "no-such-secret" in missing.stdout
