"""Stack files written by `pulumi config set` plan exactly like their hand-written twins.

`pulumi config set K V` stores the text V (a quoted string in the stack file); `--path`
stores nested values typed the CLI's way (`adjustObjectValue` in pulumi/pulumi
sdk/go/common/resource/config: "true"/"false" become booleans, decimal integers without
a leading zero become numbers, everything else stays text). The README's climb and
override commands are written here the way the CLI writes them.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from ladder import engine
from ladder.config import ConfigError

from .plans import stack_values


def _path_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if len(text) > 1 and text.startswith("0"):
        return text
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else text


def config_set(values: dict[str, Any], key: str, text: str, *, path: bool = False) -> None:
    """What `pulumi config set [--path] KEY TEXT` does to a stack file's `config:` block."""
    if not path:
        values[key] = text  # top level: always the text
        return
    namespace, dotted = key.split(":", 1)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    top = f"{namespace}:{parts[0]}"
    node = values.setdefault(top, {})
    for part, nxt in zip(parts[1:-1], parts[2:]):
        step = int(part[1:-1]) if part.startswith("[") else part
        node = node[step] if isinstance(step, int) else node.setdefault(step, [] if nxt.startswith("[") else {})
    last = parts[-1]
    value = _path_value(text)
    if last.startswith("["):
        index = int(last[1:-1])
        node[index:index + 1] = [value]
    else:
        node[last] = value


def plan_json(stack: str, values: dict[str, Any]) -> dict[str, Any]:
    data = engine.run(stack, values=values).to_json()
    return {"resources": sorted(data["resources"], key=lambda r: r["urn"]), "outputs": data["outputs"]}


# (command as typed, the hand-written stack file's equivalent)
README_COMMANDS = [
    (("scaleladder:phase", "3", False), ("scaleladder:phase", 3)),
    (("scaleladder:appTier.max", "12", True), ("appTier", {"max": 12})),
    (("scaleladder:database.instanceClass", "db.r6g.2xlarge", True), ("database", {"instanceClass": "db.r6g.2xlarge"})),
    (("scaleladder:loadBalancer", "alb", False), ("scaleladder:loadBalancer", "alb")),
    # Text keys whose value the CLI turns into a number or a boolean under --path.
    (("scaleladder:database.engineVersion", "16", True), ("database", {"engineVersion": "16"})),
    (("scaleladder:app.env.WORKERS", "4", True), ("app", {"env": {"WORKERS": "4"}})),
    (("scaleladder:app.env.FEATURE_X", "true", True), ("app", {"env": {"FEATURE_X": "true"}})),
    (("scaleladder:app.env.ZIP", "0123", True), ("app", {"env": {"ZIP": "0123"}})),
    (("scaleladder:app.queues[0]", "2024", True), ("app", {"queues": ["2024"]})),
    (("scaleladder:pgbouncer.version", "1.24", True), ("pgbouncer", {"version": "1.24"})),
    (("scaleladder:database.multiAz", "false", True), ("database", {"multiAz": False})),
]


@pytest.mark.parametrize("command,equivalent", README_COMMANDS, ids=[c[0][0] + "=" + c[0][1] for c in README_COMMANDS])
def test_a_stack_file_written_by_the_cli_plans_like_its_hand_written_twin(command, equivalent):
    base = stack_values("phase2")
    by_cli = copy.deepcopy(base)
    key, text, path = command
    config_set(by_cli, key, text, path=path)
    target, value = equivalent
    by_hand = stack_values("phase2", **({target: value} if ":" not in target else {}))
    if ":" in target:
        by_hand[target] = value
    assert by_cli != base or command[0][0] == "scaleladder:loadBalancer"
    assert plan_json("phase2", by_cli) == plan_json("phase2", by_hand)


def test_the_readme_climb_command_plans_the_next_phase():
    """`pulumi config set scaleladder:phase 3` writes "3": it must plan phase 3, not be refused."""
    values = stack_values("phase3")
    config_set(values, "scaleladder:phase", "3")
    assert values["scaleladder:phase"] == "3"
    assert engine.run("phase3", values=values).config.phase == 3


def test_the_cli_hands_the_program_text_and_json():
    cli = engine.cli_config("phase2", {**stack_values("phase2"), "scaleladder:phase": 2})
    assert cli.values["scaleladder:phase"] == "2"
    assert json.loads(cli.values["scaleladder:app"])["port"] == stack_values("phase2")["scaleladder:app"]["port"]


def test_a_secret_outside_our_namespace_is_accepted_and_never_read():
    """`aws:secretKey` set with --secret: the CLI decrypts it for the provider; the offline plan
    needs no passphrase for it."""
    values = {**stack_values("phase2"), "aws:secretKey": {"secure": "v1:bm9uY2Vub25jZQ==:Y2lwaGVy"}}
    cli = engine.cli_config("phase2", values)
    assert cli.secret_keys == ("aws:secretKey",)
    assert engine.run("phase2", values=values).config.phase == 2


def test_a_secret_in_our_namespace_is_refused_by_the_program_in_both_engines():
    values = stack_values("phase2")
    values["scaleladder:alarms"] = {"email": {"secure": "v1:bm9uY2Vub25jZQ==:Y2lwaGVy"}}
    cli = engine.cli_config("phase2", values)  # the CLI itself accepts it
    monitor = engine.RecordingMonitor(engine.AwsMocks("us-east-1"))
    with pytest.raises(ConfigError) as err:
        engine.execute("phase2", cli, "us-east-1", monitor=monitor)  # the program, as under `pulumi up`
    assert "scaleladder:alarms" in str(err.value) and monitor.recorded == []
    with pytest.raises(ConfigError):
        engine.run("phase2", values=values)


def test_a_preflight_violation_fails_the_plan_command_with_exit_2_and_nothing_else(monkeypatch, capsys):
    """Like `pulumi preview`: the violation (resource, input, value, rule, source) and no plan."""
    from ladder import preflight
    from ladder.cli import main
    from ladder.preflight.base import Violation

    bad = Violation("urn:x", "aws:ec2/securityGroup:SecurityGroup", "sg-app", "name", "sg-app-1a2b3c4",
                    "cannot begin with sg-", "terraform-provider-aws internal/service/ec2/vpc_security_group.go: name")
    monkeypatch.setattr(preflight, "check", lambda plan, previous=None: [bad])
    assert main(["plan", "phase1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "sg-app-1a2b3c4" in err and "cannot begin with sg-" in err and "vpc_security_group.go" in err
