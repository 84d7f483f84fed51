"""Host user data is gzip (cloud-init reads it) so it fits EC2's 16 KB, byte-stable across
runs, and an `app.env` that still does not fit is refused from config, naming the key."""

from __future__ import annotations

import base64
import gzip
import random
import string

import pytest

from ladder import engine, userdata
from ladder.config import ConfigError
from policy import rules

from .plans import existing_stacks, plan, stack_values, user_data_encoded, user_data_texts

EC2_INSTANCE = "aws:ec2/instance:Instance"


def big_env(count: int = 300, length: int = 100) -> dict[str, str]:
    """Values like real tokens and URLs: letters and digits that gzip cannot fold away."""
    rng = random.Random(29)
    alphabet = string.ascii_letters + string.digits
    return {f"VAR_{i:03d}": "".join(rng.choice(alphabet) for _ in range(length)) for i in range(count)}


def test_encode_is_gzip_that_round_trips_and_is_byte_stable():
    text = "#cloud-config\npackages: [nginx]\n" * 50
    encoded = userdata.encode(text)
    raw = base64.b64decode(encoded)
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", "gzip with MTIME 0"
    assert gzip.decompress(raw).decode() == userdata.decode(encoded) == text
    assert userdata.encode(text) == encoded  # a second plan gives the same bytes: no replaced host
    assert len(raw) < len(text) / 5


@pytest.mark.parametrize("stack", existing_stacks())
def test_every_host_gets_gzip_user_data_well_under_16_kb(stack):
    p = plan(stack)
    for name, encoded in user_data_encoded(p).items():
        raw = base64.b64decode(encoded)
        assert raw[:2] == b"\x1f\x8b", f"{name}: user data is not gzip"
        assert len(raw) <= userdata.MAX_BYTES - 1024, f"{name}: {len(raw)} bytes compressed leaves < 1 KB headroom"
    for r in p.of_type(EC2_INSTANCE):  # phase 1 keeps replacing its VM on new user data
        assert r.inputs.get("userDataReplaceOnChange") is True


def test_the_config_estimate_is_never_below_the_real_user_data():
    """The config-time check renders with stand-ins for values not known yet; it must not
    let through what the plan then makes too big."""
    for stack in ("phase1", "phase2", "phase3"):
        p = plan(stack)
        estimate = userdata.size(userdata.largest_app_user_data(p.config))
        app_hosts = [t for t in user_data_texts(p).values() if "app.plain.env" in t]
        assert app_hosts and max(userdata.size(t) for t in app_hosts) <= estimate


def test_a_big_app_env_is_refused_naming_the_key_before_any_resource():
    values = stack_values("phase2", app={"env": big_env()})
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(values)
    assert "scaleladder:app.env" in str(err.value) and "16384" in str(err.value)
    with pytest.raises(ConfigError):  # the offline engine refuses it before running the program
        engine.run("phase2", values=values)


def test_an_app_env_that_fits_compressed_is_accepted():
    # 30 KB of repetitive text is far over 16 KB raw and fits once gzipped
    env = {f"FEATURE_FLAG_{i:03d}": "enabled-for-all-tenants-in-every-region-" * 2 for i in range(300)}
    cfg = engine.validate_stack(stack_values("phase3", app={"env": env}))
    assert sum(len(v) for v in env.values()) > userdata.MAX_BYTES
    assert env.items() <= cfg.app.env.items()


def test_phase_6_runs_no_app_host_so_app_env_size_is_not_bounded_by_user_data():
    assert engine.validate_stack(stack_values("phase6", app={"env": big_env()})).phase == 6


def test_policy_still_sees_a_secret_inside_gzip_user_data():
    text = "#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: |\n      DB_PASSWORD=hunter2hunter2\n"
    check = rules.by_name("no-plaintext-secrets")
    leaky = rules.Resource(EC2_INSTANCE, "app", "urn:app", {"userDataBase64": userdata.encode(text)})
    clean = rules.Resource(EC2_INSTANCE, "app", "urn:app", {"userDataBase64": userdata.encode("#cloud-config\n")})
    assert rules.apply(check, [leaky]) and not rules.apply(check, [clean])


def test_policy_reads_installed_programs_like_configmap_files_and_everything_else_strictly():
    """Gunzipped, the hosts' user data carries scripts whose code names `password`: those files
    get the unambiguous patterns only; a literal in an env file beside them is still caught."""
    script = "#!/usr/bin/env python3\nsecret = new_password()\n"
    def doc(env_line: str) -> str:
        return ("#cloud-config\nwrite_files:\n  - path: /usr/local/bin/tool\n    content: |\n"
                + "".join(f"      {line}\n" for line in script.splitlines())
                + f"  - path: /etc/scaleladder/app.env\n    content: |\n      {env_line}\nruncmd:\n  - [true]\n")
    check = rules.by_name("no-plaintext-secrets")
    def flagged(text: str) -> bool:
        return bool(rules.apply(check, [rules.Resource(EC2_INSTANCE, "app", "urn:app",
                                                        {"userDataBase64": userdata.encode(text)})]))
    assert not flagged(doc("NODE_ENV=production"))
    assert flagged(doc("DB_PASSWORD=hunter2hunter2"))
    leaky_script = doc("NODE_ENV=production").replace("new_password()", "'x'\n      KEY=AKIAIOSFODNN7EXAMPLE")
    assert flagged(leaky_script)  # unambiguous patterns still apply inside programs
    sql = "#cloud-config\nwrite_files:\n  - path: /usr/local/share/x.sql\n    content: |\n      SET passwd = EXCLUDED.passwd;\n"
    assert not flagged(sql)  # SQL shipped without its leading comment is known by its path
