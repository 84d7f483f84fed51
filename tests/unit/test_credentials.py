"""Database credentials in the plans (issue 11): our own master password, one secret per
login, the app never holding the master, no password in plain text anywhere."""

from __future__ import annotations

import ast
import base64
import json
import re

import pytest

from ladder import credentials, engine, render, userdata
from ladder.config import ConfigError
from ladder.mocks import MOCK_DB_PASSWORD, MOCK_PASSWORD_PREFIX

from .plans import SECRET_HOLDERS, existing_stacks, plan, secret_paths, stack_values

RDS = "aws:rds/instance:Instance"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
EC2_PHASES = ["phase1", "phase2", "phase3", "phase4", "phase5"]
MASTER_CONSUMERS = {"phase1": "app-host", "phase2": "app-host", "phase3": "pgbouncer-host",
                    "phase4": "pgbouncer-host", "phase5": "pgbouncer-host"}




def host_texts(p: engine.Plan) -> dict[str, str]:
    """Every EC2 host's user data as cloud-init text (plain, base64 or gzip+base64)."""
    out = {}
    for r in p.resources:
        if r.type == "aws:ec2/instance:Instance":
            if "userDataBase64" in r.inputs:
                out[r.name] = userdata.decode(r.inputs["userDataBase64"])
            elif "userData" in r.inputs:
                out[r.name] = r.inputs["userData"]
        elif r.type == "aws:ec2/launchTemplate:LaunchTemplate" and "userData" in r.inputs:
            out[r.name] = userdata.decode(r.inputs["userData"])
    return out


def app_texts(p: engine.Plan) -> dict[str, str]:
    return {n: t for n, t in host_texts(p).items() if "/etc/scaleladder/boot.env" in t}


def arns(p: engine.Plan) -> dict[str, str]:
    return dict(p.outputs["dbSecretArns"])


def block(text: str, path: str) -> str:
    """The content of one write_files entry."""
    return text.split(f"path: {path}", 1)[1].split("\n  - path:", 1)[0]


def secret_value(p: engine.Plan, logical: str) -> dict[str, str]:
    version = p.one(SECRET_VERSION, logical)
    value = version.inputs["secretString"]
    assert isinstance(value, engine.Secret), f"{logical}'s value must stay a Pulumi secret"
    return json.loads(value.value)


def role_policy(p: engine.Plan, role: str) -> dict:
    return json.loads(p.one("aws:iam/rolePolicy:RolePolicy", f"{role}-access").inputs["policy"])


def readable_secrets(p: engine.Plan, role: str) -> set[str]:
    return {arn for s in role_policy(p, role)["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"
            for arn in s["Resource"]}


# --- the master password is ours ---------------------------------------------------------


@pytest.mark.parametrize("stack", existing_stacks())
def test_the_master_password_is_generated_by_us_and_stays_secret(stack):
    p = plan(stack)
    for r in p.of_type(RDS):
        assert "manageMasterUserPassword" not in r.inputs, f"{r.name}: RDS must not manage the password"
    primary = p.one(RDS, "db")
    assert primary.inputs["username"] == credentials.MASTER_USER
    assert isinstance(primary.inputs["password"], engine.Secret)
    master = secret_value(p, credentials.SECRET_MASTER)
    assert master == {"username": credentials.MASTER_USER, "password": primary.inputs["password"].value}
    assert "password" in primary.options["ignoreChanges"], "rotate-master's new password must survive `up`"


@pytest.mark.parametrize("stack", ["phase3", "phase4", "phase5", "phase6"])
def test_replicas_replicate_a_source_whose_password_we_own(stack):
    p = plan(stack)
    primary = p.one(RDS, "db")
    replicas = [r for r in p.of_type(RDS) if r.inputs.get("replicateSourceDb")]
    assert replicas and len(replicas) == p.config.database.replicas
    for r in replicas:
        assert r.inputs["replicateSourceDb"] == primary.state["identifier"]
        assert "password" not in r.inputs and "manageMasterUserPassword" not in r.inputs
    assert isinstance(primary.inputs["password"], engine.Secret)


def test_each_secret_holds_its_layout_and_survives_rotation():
    p = plan("phase3")
    assert set(arns(p)) == set(credentials.SECRET_KEYS)
    for logical, keys in credentials.SECRET_KEYS.items():
        value = secret_value(p, logical)
        assert tuple(value) == keys
        assert all(v for v in value.values()), logical
        # the project's rotation writes new versions; `pulumi up` must not revert them
        assert "secretString" in p.one(SECRET_VERSION, logical).options["ignoreChanges"], logical
    assert secret_value(p, credentials.SECRET_APP)["username"] == credentials.INITIAL_APP_RW_LOGIN
    assert secret_value(p, credentials.SECRET_APP_RO)["username"] == credentials.INITIAL_APP_RO_LOGIN
    passwords = [v for logical in credentials.SECRET_KEYS for k, v in secret_value(p, logical).items()
                 if "password" in k]
    assert len(set(passwords)) == len(passwords) == 6, "every login gets its own password"


def test_generated_passwords_fit_what_rds_accepts():
    p = plan("phase1")
    for r in p.of_type("random:index/randomPassword:RandomPassword"):
        if not r.name.startswith("db-"):
            continue
        i = r.inputs
        assert 8 <= i["length"] <= 128 and i["length"] >= 32
        # RDS CreateDBInstance MasterUserPassword: printable ASCII except '/', '"', '@' (no spaces)
        assert i["special"] is True and not set(i["overrideSpecial"]) & set('/"@ \'')


# --- the app never holds the master ------------------------------------------------------


@pytest.mark.parametrize("stack", EC2_PHASES)
def test_app_hosts_get_the_app_logins_never_the_master(stack):
    p = plan(stack)
    a = arns(p)
    texts = app_texts(p)
    assert texts
    for name, text in texts.items():
        env = block(text, "/etc/scaleladder/boot.env")
        assert f"DB_SECRET_ARN={a[credentials.SECRET_APP]}" in env
        assert f"DB_READ_SECRET_ARN={a[credentials.SECRET_APP_RO]}" in env
        plain = block(text, "/etc/scaleladder/app.plain.env")
        for where in (env, plain, block(text, "/usr/local/sbin/scaleladder-boot")):
            assert a[credentials.SECRET_MASTER] not in where and credentials.MASTER_USER not in where, name
        # Only the bootstrap unit (phases 1-2, before the containers) names the master secret.
        lines = [line for line in text.splitlines() if a[credentials.SECRET_MASTER] in line]
        if p.config.uses_pgbouncer:
            assert not lines, f"{name}: app hosts do not bootstrap once PgBouncer does"
        else:
            assert len(lines) == 1 and lines[0].strip().startswith(
                f"ExecStart={credentials.HOST_SCRIPT_HOST_PATH} bootstrap "), name


@pytest.mark.parametrize("stack", EC2_PHASES)
def test_only_the_bootstrapping_hosts_may_read_the_master_secret(stack):
    p = plan(stack)
    a = arns(p)
    app = readable_secrets(p, "app-host")
    assert {a[credentials.SECRET_APP], a[credentials.SECRET_APP_RO]} <= app
    if MASTER_CONSUMERS[stack] == "pgbouncer-host":
        assert a[credentials.SECRET_MASTER] not in app, "app hosts must not read db-master from phase 3"
        assert a[credentials.SECRET_PGBOUNCER] not in app
        assert set(a.values()) <= readable_secrets(p, "pgbouncer-host")
    else:
        assert a[credentials.SECRET_MASTER] in app  # the bootstrap unit on the host, not the containers
        assert not [r for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "pgbouncer-host-access"]


@pytest.mark.parametrize("stack", EC2_PHASES)
def test_database_urls_use_tls_with_the_app_logins(stack):
    p = plan(stack)
    for text in app_texts(p).values():
        boot = block(text, "/usr/local/sbin/scaleladder-boot")
        assert "sslmode=disable" not in boot
        assert 'tls = "sslmode=require&uselibpqcompat=true"' in boot and "sslmode=verify-full&sslrootcert=" in boot
        env = block(text, "/etc/scaleladder/boot.env")
        assert ("DB_VIA_PGBOUNCER=true" in env) == p.config.uses_pgbouncer


# --- no password in plain text -----------------------------------------------------------


@pytest.mark.parametrize("stack", existing_stacks())
def test_no_password_appears_in_plain_text(stack, tmp_path):
    p = plan(stack)
    generated = {r.state["result"] for r in p.of_type("random:index/randomPassword:RandomPassword")}
    assert generated and all(g.startswith(MOCK_PASSWORD_PREFIX) for g in generated)
    forbidden = [MOCK_DB_PASSWORD, MOCK_PASSWORD_PREFIX]
    for r in p.resources:
        if r.type.startswith("random:"):
            continue
        leaked = [s for s in engine.strings(engine.public(r.inputs)) for f in forbidden if f in s]
        assert not leaked, f"{r.type} {r.name} carries a password in plain text"
        # A value marked secret still lands in clear text in user data or a tag: only the
        # inputs made to hold a secret may receive one.
        for path in secret_paths(r.inputs):
            assert (r.type, path) in SECRET_HOLDERS, f"{r.type} {r.name}.{path} receives a secret"
    for name, text in host_texts(p).items():
        assert not any(f in text for f in forbidden), f"{name}'s user data holds a password"
    assert not any(f in s for s in engine.strings(engine.public(p.outputs)) for f in forbidden)
    for path in render.write(p, tmp_path):
        assert not any(f in path.read_text() for f in forbidden), f"{path} holds a password"


def test_the_scan_would_see_a_leaked_password():
    """The realistic mistake: a password interpolated into user data or an output."""
    p = plan("phase1")
    leaked = secret_value(p, credentials.SECRET_APP)["password"]
    assert MOCK_PASSWORD_PREFIX in leaked
    assert any(MOCK_PASSWORD_PREFIX in s for s in engine.strings({"userData": f"DATABASE_URL=postgres://x:{leaked}@h"}))


# --- refresh paths and hosts --------------------------------------------------------------


@pytest.mark.parametrize("stack", EC2_PHASES)
def test_app_hosts_follow_a_rotation(stack):
    for text in app_texts(plan(stack)).values():
        script = block(text, "/usr/local/sbin/scaleladder-refresh")
        assert "DB_SECRET_ARN" in script and "DB_READ_SECRET_ARN" in script and "--query VersionId" in script
        assert "systemctl restart scaleladder.service" in script
        assert "OnUnitActiveSec=5min" in block(text, "/etc/systemd/system/scaleladder-refresh.timer")
        assert "[systemctl, enable, --now, scaleladder-refresh.timer]" in text
        # boot.sh records the versions it started with, or every timer run would restart
        assert "/var/lib/scaleladder/db-secret-versions" in block(text, "/usr/local/sbin/scaleladder-boot")


@pytest.mark.parametrize("stack", ["phase3", "phase4", "phase5"])
def test_pgbouncer_hosts_bootstrap_before_pgbouncer_and_follow_their_secret(stack):
    p = plan(stack)
    a = arns(p)
    text = host_texts(p)["pgbouncer"]
    setup = block(text, "/usr/local/sbin/scaleladder-pgbouncer-setup")
    assert f"bootstrap --region {p.config.region} --host {p.outputs['dbAddress']} " in setup
    assert "--sslmode verify-full" in setup and f"--master-secret '{a[credentials.SECRET_MASTER]}'" in setup
    dropin = block(text, "/etc/systemd/system/pgbouncer.service.d/scaleladder.conf")
    assert "Requires=scaleladder-pgbouncer-setup.service" in dropin and "LimitNOFILE=65536" in dropin
    refresh = block(text, "/usr/local/sbin/scaleladder-pgbouncer-refresh")
    assert f"--secret-id '{a[credentials.SECRET_PGBOUNCER]}'" in refresh and "pgbouncer-userlist" in refresh
    assert "systemctl reload pgbouncer" in refresh
    assert "OnUnitActiveSec=5min" in block(text, "/etc/systemd/system/scaleladder-pgbouncer-refresh.timer")


def test_shipped_host_script_and_sql_are_the_repository_code():
    """User data carries compacted copies (16 KB budget): the same code, comments dropped."""
    shipped, original = ast.parse(userdata.shipped_script()), ast.parse(credentials.HOST_SCRIPT.read_text())
    for tree in (shipped, original):
        tree.body[0].value.value = ""  # type: ignore[attr-defined]  # the module docstring
    assert ast.dump(shipped) == ast.dump(original)
    code = [line for line in credentials.BOOTSTRAP_SQL.read_text().splitlines() if not line.lstrip().startswith("--")]
    assert userdata.shipped_sql().splitlines() == code


@pytest.mark.parametrize("stack", EC2_PHASES)
def test_user_data_fits_ec2s_limit(stack):
    p = plan(stack)
    for r in p.of_type("aws:ec2/launchTemplate:LaunchTemplate") + p.of_type("aws:ec2/instance:Instance"):
        encoded = r.inputs.get("userDataBase64") or r.inputs.get("userData")
        raw = base64.b64decode(encoded) if r.type.endswith("LaunchTemplate") or "userDataBase64" in r.inputs \
            else encoded.encode()
        assert len(raw) <= 16 * 1024, f"{r.name}: {len(raw)} bytes"


# --- engine versions and parameters -------------------------------------------------------


def params(p: engine.Plan) -> dict[str, dict]:
    group = p.one("aws:rds/parameterGroup:ParameterGroup")
    return {x["name"]: x for x in group.inputs["parameters"]}


def test_force_ssl_is_pending_reboot_on_14_and_left_to_the_default_from_15():
    old = params(engine.run("phase2", values=stack_values("phase2", database={"engineVersion": "14"})))
    assert old["rds.force_ssl"]["value"] == "1" and old["rds.force_ssl"]["applyMethod"] == "pending-reboot"
    for version in ("15", "16", "17"):
        new = params(engine.run("phase2", values=stack_values("phase2", database={"engineVersion": version})))
        assert "rds.force_ssl" not in new and "password_encryption" not in new, version


def test_a_major_upgrade_sets_the_flag_and_a_downgrade_is_refused():
    values = stack_values("phase2", database={"engineVersion": "17"})
    up = engine.run("phase2", values=values, previous_outputs={"dbEngineVersion": "16"})
    assert up.one(RDS, "db").inputs["allowMajorVersionUpgrade"] is True
    same = engine.run("phase2", values=values, previous_outputs={"dbEngineVersion": "17.2"})
    assert not same.one(RDS, "db").inputs.get("allowMajorVersionUpgrade")
    with pytest.raises(ConfigError) as err:
        engine.run("phase2", values=stack_values("phase2", database={"engineVersion": "15"}),
                   previous_outputs={"dbEngineVersion": "16.4"})
    assert "scaleladder:database.engineVersion" in str(err.value) and "16.4" in str(err.value)
    assert re.search(r"allowed: 16 or later", str(err.value))


def test_the_deployed_engine_version_is_an_output():
    p = plan("phase2")
    assert p.outputs["dbEngineVersion"] == p.config.database.engine_version
