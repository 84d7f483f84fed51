"""Phase 3's PgBouncer config in front of a real PostgreSQL primary and two streaming
replicas on loopback (TLS-only, SCRAM), rendered by `ladder.pgbouncer` for the PgBouncer
version installed here.

What must hold on the hosts: PgBouncer's own parser accepts the file; the rw pool reaches
the primary and the ro pool the replicas (and cannot write); 300 clients share at most
default_pool_size + reserve_pool_size server connections per pool; settings newer than
the configured version stay out of the file; server connections are TLS verified
against the CA.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pgcluster import (  # noqa: F401  (pgcluster is a fixture)
    ADMIN_USER,
    APP_USER,
    STATS_USER,
    ConnectionSampler,
    PgBouncer,
    PgCluster,
    finish_pgbench,
    init_pgbench,
    installed_pgbouncer_version,
    make_tls,
    pgbouncer_ini_data,
    pgbouncer_rejects,
    pgcluster,
    running_pgbouncer,
    service_workdir,
    start_pgbench,
)

from ladder import pgbouncer as pgb

pytestmark = pytest.mark.integration

# Small pools so the bound is meaningful under 300 clients; max_client_conn is the
# sources' default, exactly the number of clients the load test opens.
POOL = {"pool_mode": "transaction", "max_client_conn": 300, "default_pool_size": 10, "reserve_pool_size": 2}
POOL_CAP = POOL["default_pool_size"] + POOL["reserve_pool_size"]
CLIENTS_PER_POOL = 150  # 150 on the rw pool + 150 on the ro pool = 300 concurrent clients
READ_ONLY_ERROR = "cannot execute INSERT in a read-only transaction"
GATED = ("max_prepared_statements", "load_balance_hosts")
# Seconds a client waits on a pool whose server login fails (TLS refused) before giving
# up; a login that works takes milliseconds, so this only bounds the expected failures.
FAILING_LOGIN_WAIT = 3


def _render(version: str, replicas: int = 2) -> str:
    data = pgb.ini_data(version=version, primary_host="primary.rds", **POOL,
                        replica_hosts=[f"replica{i}.rds" for i in range(1, replicas + 1)])
    return pgb.render_ini(data)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A fresh directory for one extra PgBouncer (its config, auth file and log)."""
    path = service_workdir("scaleladder-pgb-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def version(pgcluster: PgCluster) -> str:
    """The installed PgBouncer's version: what the config is rendered for."""
    return installed_pgbouncer_version(pgcluster.bins)


@pytest.fixture(scope="module")
def bouncer_data(pgcluster: PgCluster, version: str) -> Iterator[tuple[dict[str, Any], Path]]:
    path = service_workdir("scaleladder-pgb-")
    yield pgbouncer_ini_data(pgcluster, path, version=version, **POOL), path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer(pgcluster: PgCluster, bouncer_data: tuple[dict[str, Any], Path]) -> Iterator[PgBouncer]:
    """PgBouncer on the rendered config for both pools, for the whole module."""
    data, path = bouncer_data
    with running_pgbouncer(pgcluster, data, path) as running:
        yield running


# ---------------------------------------------------------------- PgBouncer's own parsing


def test_rendered_config_is_what_pgbouncer_runs(bouncer: PgBouncer,
                                                bouncer_data: tuple[dict[str, Any], Path]) -> None:
    """The file parses on the installed PgBouncer and `SHOW CONFIG` reports the rendered
    values, so no setting was silently ignored or misspelt."""
    data, _ = bouncer_data
    shown = bouncer.show_config()
    for key in ("pool_mode", "max_client_conn", "default_pool_size", "reserve_pool_size",
                "reserve_pool_timeout", "auth_type", "admin_users", "stats_users",
                "ignore_startup_parameters", "server_tls_sslmode", "server_reset_query",
                "server_lifetime", "server_idle_timeout"):
        assert _same(shown[key], data[key]), (key, shown[key], data[key])
    assert shown["default_pool_size"] == "10" and shown["max_client_conn"] == "300"


def _same(shown: str, rendered: object) -> bool:
    """SHOW CONFIG prints seconds as floats (`3` may come back as `3.0`)."""
    if isinstance(rendered, (int, float)) and not isinstance(rendered, bool):
        return float(shown) == float(rendered)
    return shown == str(rendered)


def test_both_pools_are_defined_with_their_hosts(bouncer: PgBouncer, pgcluster: PgCluster) -> None:
    """`app` points at the primary and `app_ro` at every replica, as one host list."""
    databases = {row[0]: row for row in bouncer.console("SHOW DATABASES")}
    assert databases[pgb.RW_DATABASE][1] == pgcluster.primary.host
    assert databases[pgb.RO_DATABASE][1] == ",".join(r.host for r in pgcluster.replicas)


def test_console_users_get_their_rights(bouncer: PgBouncer) -> None:
    """stats_users may watch the pools but not control them; admin_users may do both."""
    bouncer.query("SELECT 1", db=pgb.RW_DATABASE)
    bouncer.query("SELECT 1", db=pgb.RO_DATABASE)
    pools = bouncer.console("SHOW POOLS", user=STATS_USER)
    assert {(row[0], row[1]) for row in pools} >= {(pgb.RW_DATABASE, APP_USER), (pgb.RO_DATABASE, APP_USER)}
    denied = bouncer.psql("PAUSE", db="pgbouncer", user=STATS_USER)
    assert denied.returncode != 0 and "admin access needed" in denied.stderr
    assert bouncer.psql("RELOAD", db="pgbouncer", user=ADMIN_USER).returncode == 0


def test_rendered_config_holds_no_password(pgcluster: PgCluster,
                                           bouncer_data: tuple[dict[str, Any], Path]) -> None:
    """Credentials reach the host from Secrets Manager, never through the template."""
    data, _ = bouncer_data
    assert pgcluster.app_password not in pgb.render_ini(data)
    assert "password" not in {key.lower() for key in data}


# ---------------------------------------------------------------- the two pools


def test_rw_pool_reaches_primary_and_ro_pool_a_replica(bouncer: PgBouncer) -> None:
    """The ro pool must land on a server in recovery (a replica), the rw pool must not."""
    assert bouncer.query("SELECT pg_is_in_recovery()", db=pgb.RW_DATABASE) == "f"
    assert bouncer.query("SELECT pg_is_in_recovery()", db=pgb.RO_DATABASE) == "t"


def test_write_through_rw_pool_is_read_through_ro_pool(bouncer: PgBouncer) -> None:
    """What the app writes via DATABASE_URL shows up via DATABASE_READ_URL once replayed."""
    marker = uuid.uuid4().hex
    bouncer.query("CREATE TABLE IF NOT EXISTS ladder_marks (mark text PRIMARY KEY)", db=pgb.RW_DATABASE)
    bouncer.query(f"INSERT INTO ladder_marks VALUES ('{marker}')", db=pgb.RW_DATABASE)
    assert _read_until_visible(bouncer, f"SELECT count(*) FROM ladder_marks WHERE mark = '{marker}'") == "1"


def _read_until_visible(bouncer: PgBouncer, sql: str, timeout: float = 30.0) -> str:
    """Poll the ro pool (replication is asynchronous); the last answer after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        done = bouncer.psql(sql, db=pgb.RO_DATABASE)
        answer = done.stdout.strip() if done.returncode == 0 else done.stderr.strip()
        if answer == "1" or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_ro_pool_rejects_writes(bouncer: PgBouncer) -> None:
    """A write sent to DATABASE_READ_URL fails on the replica instead of diverging."""
    bouncer.query("CREATE TABLE IF NOT EXISTS ladder_marks (mark text PRIMARY KEY)", db=pgb.RW_DATABASE)
    done = bouncer.psql("INSERT INTO ladder_marks VALUES ('from-ro-pool')", db=pgb.RO_DATABASE)
    assert done.returncode != 0
    assert READ_ONLY_ERROR in done.stderr
    assert bouncer.query("SELECT count(*) FROM ladder_marks WHERE mark = 'from-ro-pool'",
                         db=pgb.RW_DATABASE) == "0"


def test_ro_pool_without_replicas_stays_read_only(pgcluster: PgCluster, version: str, workdir: Path) -> None:
    """With no replicas the ro pool falls back to the primary but its sessions stay
    read-only, so an app that writes through DATABASE_READ_URL still fails loudly."""
    data = pgbouncer_ini_data(pgcluster, workdir, version=version, replica_hosts=[], **POOL)
    with running_pgbouncer(pgcluster, data, workdir) as fallback:
        assert fallback.query("SELECT pg_is_in_recovery()", db=pgb.RO_DATABASE) == "f"
        done = fallback.psql("CREATE TABLE ladder_fallback (x int)", db=pgb.RO_DATABASE)
        assert done.returncode != 0 and "read-only transaction" in done.stderr


# ---------------------------------------------------------------- pooling under load


def test_300_clients_share_a_bounded_pool_per_database(bouncer: PgBouncer, pgcluster: PgCluster) -> None:
    """300 concurrent clients (150 writing via rw, 150 reading via ro) are all served,
    while each pool holds at most default_pool_size + reserve_pool_size server connections:
    the promise that lets phase 3 grow clients without growing RDS connections."""
    init_pgbench(pgcluster)
    pools = {pgb.RW_DATABASE: [pgcluster.primary], pgb.RO_DATABASE: pgcluster.replicas}
    with ConnectionSampler(pools) as sampler:
        writers = start_pgbench(bouncer, pgb.RW_DATABASE, clients=CLIENTS_PER_POOL, transactions=10,
                                select_only=False)
        readers = start_pgbench(bouncer, pgb.RO_DATABASE, clients=CLIENTS_PER_POOL, transactions=100,
                                select_only=True)
        results = [finish_pgbench(writers), finish_pgbench(readers)]
    for result in results:
        assert result.returncode == 0, result.output
        assert result.clients == CLIENTS_PER_POOL, result.output
        assert result.transactions == result.expected > 0 and result.failed == 0, result.output
    print(f"\npeak server connections per pool {sampler.peaks}, per server {sampler.server_peaks}, "
          f"{sampler.samples} samples, clients served {sum(r.clients for r in results)}")
    for pool, peak in sampler.peaks.items():
        assert 1 < peak <= POOL_CAP, (pool, sampler.peaks)
    # The ro pool spreads over both replicas (round-robin over the host list).
    assert all(sampler.server_peaks[r.name] > 0 for r in pgcluster.replicas), sampler.server_peaks


# ---------------------------------------------------------------- version gating


def test_settings_newer_than_the_version_are_not_rendered() -> None:
    """1.18 gets neither gated setting, 1.21 prepared statements only, 1.24 both."""
    for version, expected in (("1.18", set()), ("1.21", {"max_prepared_statements"}),
                              ("1.24", {"max_prepared_statements", "load_balance_hosts"})):
        text = _render(version)
        assert {name for name in GATED if f"{name} =" in text or f"{name}=" in text} == expected, version


def test_versions_compare_as_numbers() -> None:
    """1.9 is older than 1.17 (text comparison would say newer): no host list for it."""
    assert pgb.parse_version("1.9") < pgb.parse_version("1.17") < pgb.parse_version("1.24.1")
    with pytest.raises(ValueError, match="host lists need 1.17"):
        _render("1.9")
    assert "host=replica1.rds port" in _render("1.9", replicas=1)


@pytest.mark.parametrize("rendered_for", ["1.18", "1.21", "1.24"])
def test_installed_pgbouncer_accepts_exactly_what_its_version_supports(
        pgcluster: PgCluster, version: str, workdir: Path, rendered_for: str) -> None:
    """A config rendered for a newer release fails to load on an older one (unknown
    settings are fatal), which is why the version must match what the hosts install."""
    data = pgbouncer_ini_data(pgcluster, workdir, version=rendered_for, **POOL)
    needs = [name for name in GATED if pgb.supports(rendered_for, name)]
    should_start = all(pgb.supports(version, name) for name in needs)
    error = pgbouncer_rejects(pgcluster, data, workdir)
    assert (error is None) == should_start, error
    if error:
        assert any(name in error for name in needs), error


# ---------------------------------------------------------------- TLS to the servers


def test_server_connections_are_encrypted(bouncer: PgBouncer, pgcluster: PgCluster) -> None:
    """Every connection PgBouncer holds on every server uses TLS (the servers only
    accept TLS logins over TCP, as RDS with rds.force_ssl)."""
    bouncer.query("SELECT 1", db=pgb.RW_DATABASE)
    bouncer.query("SELECT 1", db=pgb.RO_DATABASE)
    per_server = {server.name: server.psql(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        f"WHERE a.usename = '{APP_USER}'").split() for server in pgcluster.servers}
    replica_rows = [row for r in pgcluster.replicas for row in per_server[r.name]]
    assert per_server[pgcluster.primary.name] and replica_rows, per_server
    assert {row for rows in per_server.values() for row in rows} == {"t"}, per_server


def test_server_certificate_from_another_ca_is_refused(pgcluster: PgCluster, version: str,
                                                       workdir: Path) -> None:
    """The CA check is real: trusting a different CA, PgBouncer cannot log in anywhere."""
    stranger = make_tls(pgcluster.bins, workdir / "other-ca", ["127.0.0.1"], name="stranger")
    data = pgbouncer_ini_data(pgcluster, workdir, version=version, server_tls_ca_file=str(stranger.ca_file),
                              **POOL)
    with running_pgbouncer(pgcluster, data, workdir) as untrusting:
        done = untrusting.psql("SELECT 1", db=pgb.RW_DATABASE, connect_timeout=FAILING_LOGIN_WAIT)
        assert done.returncode != 0
        assert "certificate verify failed" in untrusting.log.read_text()


def test_verify_full_with_a_single_host_matches_the_name(pgcluster: PgCluster, version: str,
                                                         workdir: Path) -> None:
    """With one replica, verify-full is rendered as asked and the host name check passes."""
    data = pgbouncer_ini_data(pgcluster, workdir, version=version, replica_hosts=[pgcluster.replicas[0].host],
                              **POOL)
    assert data["server_tls_sslmode"] == "verify-full"
    with running_pgbouncer(pgcluster, data, workdir) as strict:
        assert strict.query("SELECT pg_is_in_recovery()", db=pgb.RO_DATABASE) == "t"
        assert strict.query("SELECT pg_is_in_recovery()", db=pgb.RW_DATABASE) == "f"


def test_verify_full_over_a_host_list_is_gated_by_version(pgcluster: PgCluster, version: str,
                                                          workdir: Path) -> None:
    """Before 1.25 PgBouncer checks a host list as one name (pgbouncer#1300), so verify-full
    would break the ro pool: the renderer falls back to verify-ca there, and forcing
    verify-full really does fail on such a release."""
    data = pgbouncer_ini_data(pgcluster, workdir, version=version, **POOL)
    fixed = pgb.supports(version, "verify_full_host_list")
    assert data["server_tls_sslmode"] == ("verify-full" if fixed else "verify-ca")
    forced = {**data, "server_tls_sslmode": "verify-full"}
    with running_pgbouncer(pgcluster, forced, workdir) as strict:
        done = strict.psql("SELECT 1", db=pgb.RO_DATABASE, connect_timeout=FAILING_LOGIN_WAIT)
        assert (done.returncode == 0) == fixed, done.stderr
        if not fixed:
            assert "not present in server certificate" in strict.log.read_text()


@pytest.mark.parametrize("key, users", [("admin_users", ["app_rw_a"]), ("stats_users", ["app_ro_b"]),
                                        ("admin_users", ["ladder_master"]), ("stats_users", ["pgbouncer_auth"])])
def test_console_users_are_never_app_logins_or_the_master(key: str, users: list[str]) -> None:
    with pytest.raises(ValueError, match=key):
        pgb.ini_data(version="1.22", primary_host="primary.rds", replica_hosts=[], **POOL, **{key: users})


def test_client_tls_cannot_be_switched_off() -> None:
    with pytest.raises(ValueError, match="client_tls_sslmode"):
        pgb.ini_data(version="1.22", primary_host="primary.rds", replica_hosts=[], **POOL,
                     client_tls_sslmode="disable")
