"""Bad input: every invalid config stops the program before any resource is
registered, with a message naming the key (and what is allowed)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ladder import engine
from ladder.config import ConfigError
from ladder.phases import deep_merge

CORPUS = yaml.safe_load((Path(__file__).parent / "invalid_configs.yaml").read_text())


def corpus_values(case: dict) -> dict:
    values = copy.deepcopy(engine.read_stack(case.get("base", "phase2")))
    for key, value in (case.get("set") or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    for section, value in (case.get("merge") or {}).items():
        full = f"scaleladder:{section}"
        values[full] = deep_merge(values.get(full, {}), value) if isinstance(value, dict) else value
    return values


def test_corpus_is_large_and_distinct():
    names = [c["name"] for c in CORPUS]
    assert len(names) == len(set(names)) and len(CORPUS) >= 40


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_invalid_config_names_the_key(case):
    with pytest.raises(ConfigError) as err:
        engine.run(case.get("base", "phase2"), values=corpus_values(case))
    message = str(err.value)
    assert case["key"] in message, message
    if "says" in case:
        assert case["says"] in message, message
    assert "Traceback" not in message


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_the_program_itself_refuses_before_registering_anything(case):
    """The same config given straight to __main__.py, as the Pulumi CLI would hand it over
    (declared defaults applied), with no pre-validation by the tooling."""
    try:
        cli = engine.cli_config("phase2", corpus_values(case))
    except ConfigError as err:
        assert "Pulumi.yaml declares it" in str(err), "only the CLI's own checks may refuse before the program"
        pytest.skip("a Pulumi.yaml type/required error: the CLI refuses it before the program runs")
    monitor = engine.RecordingMonitor(engine.AwsMocks("us-east-1"))
    with pytest.raises(ConfigError) as err:
        engine.execute("phase2", cli, "us-east-1", monitor=monitor)
    assert case["key"] in str(err.value)
    assert monitor.recorded == []


def test_the_cli_exits_2_with_the_message_and_no_traceback(capsys):
    from ladder.cli import main

    assert main(["plan", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert "no-such-stack" in err and "phase1" in err and "Traceback" not in err


def test_every_problem_is_reported_at_once():
    values = corpus_values({"merge": {"appTier": {"min": "x"}, "network": {"azCount": 9}, "redis": {"shardz": 1}}})
    with pytest.raises(ConfigError) as err:
        engine.run("phase2", values=values)
    keys = [p.split(":", 2)[1].split(":")[0] for p in err.value.problems]
    assert len(err.value.problems) == 3, err.value.problems
    assert {"appTier.min", "network.azCount", "redis.shardz"} <= {k.strip() for k in keys}


def test_unused_keys_are_accepted_and_reported():
    from ladder.aws_facts import EKS_VERSIONS

    from .plans import plan

    p = plan("phase1", eks={"version": EKS_VERSIONS[0]}, pgbouncer={"instances": 3})
    assert "scaleladder:eks.version" in p.unused_keys and "scaleladder:pgbouncer.instances" in p.unused_keys
    assert not [k for k in p.unused_keys if k.startswith("scaleladder:app.")]


@pytest.mark.parametrize("stack", engine.stack_names())
def test_every_preset_stack_is_valid(stack):
    cfg = engine.validate_stack(engine.read_stack(stack), stack=stack)
    assert cfg.phase == int(stack.removeprefix("phase"))


def test_config_reference_is_generated_and_up_to_date():
    from pathlib import Path

    from ladder.config_docs import config_markdown

    text = config_markdown()
    assert "`pgbouncer.defaultPoolSize`" in text and "`eks.hpa.cpuPercent`" in text
    checked_in = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    assert checked_in == text, "docs/config.md is stale: run `python -m ladder docs`"


def test_declared_keys_follow_the_cli_rules():
    """Pulumi.yaml: a declared key without a default is required; with one, it is filled in."""
    filled = engine.cli_config("s", {"scaleladder:phase": 2}).values
    assert filled["scaleladder:loadBalancer"] == engine.project_defaults()["scaleladder:loadBalancer"] == "alb"
    with pytest.raises(ConfigError) as err:
        engine.cli_config("s", {"scaleladder:loadBalancer": "alb"})
    assert "Stack 's' is missing configuration value 'phase'" in str(err.value)
