"""`ladder diff`: properties, no golden files. Plans are the presets' offline plans, edited
the way a careless change would edit them."""

from __future__ import annotations

import copy
import json

import pytest

from ladder import cli, engine, userdata
from ladder.diff import PlanUnavailable, compare, is_stateful, load, ordered

RDS = "aws:rds/instance:Instance"


def plan(stack: str = "phase2") -> dict:
    return load(stack)


def primary(p: dict) -> dict:
    return next(r for r in p["resources"] if r["type"] == RDS and not r["inputs"].get("replicateSourceDb"))


def first(p: dict, type_: str) -> dict:
    return next(r for r in p["resources"] if r["type"] == type_)


def run_diff(tmp_path, a: dict, b: dict, *flags: str) -> int:
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return cli.main(["diff", str(pa), str(pb), *flags])


@pytest.mark.parametrize("key,value", [("dbName", "other"), ("storageEncrypted", False), ("username", "root")])
def test_replacing_the_rds_primary_exits_3_and_is_reported_first(tmp_path, capsys, key, value):
    a = plan()
    b = copy.deepcopy(a)
    primary(b)["inputs"][key] = value
    assert run_diff(tmp_path, a, b) == 3
    out = capsys.readouterr()
    assert "STATEFUL RESOURCE LOST" in out.out and "--allow-destroy" in out.err
    assert out.out.index("STATEFUL RESOURCE LOST") < out.out.index("to add")  # before the summary and the table
    d = compare(a, b)
    assert d.findings[0].kind == "loss" and d.findings[0].name == primary(a)["name"]
    assert ordered(d)[0].name == primary(a)["name"] and ordered(d)[0].action == "replace"
    assert run_diff(tmp_path, a, b, "--allow-destroy") == 0


def test_markdown_puts_the_stateful_warning_first(tmp_path, capsys):
    a = plan()
    b = copy.deepcopy(a)
    primary(b)["inputs"]["dbName"] = "other"
    assert run_diff(tmp_path, a, b, "--markdown") == 3
    out = capsys.readouterr().out
    assert out.index("[!CAUTION]") < out.index("to add, ")


def test_removing_the_primary_without_retain_is_a_loss(tmp_path):
    a = plan()
    primary(a)["options"]["retainOnDelete"] = False
    b = copy.deepcopy(a)
    b["resources"] = [r for r in b["resources"] if r["urn"] != primary(a)["urn"]]
    assert run_diff(tmp_path, a, b) == 3
    assert compare(a, b).findings[0].reason.startswith("DELETED")


def test_removing_a_retained_resource_warns_but_passes(tmp_path, capsys):
    a = plan()
    assert primary(a)["options"]["retainOnDelete"], "the preset's primary carries retainOnDelete"
    b = copy.deepcopy(a)
    b["resources"] = [r for r in b["resources"] if r["urn"] != primary(a)["urn"]]
    assert run_diff(tmp_path, a, b) == 0
    assert "retained in AWS" in capsys.readouterr().out
    assert [f.kind for f in compare(a, b).findings] == ["retained"]


def test_dropping_protection_is_a_warning():
    a = plan()
    b = copy.deepcopy(a)
    primary(b)["options"]["protect"] = False
    (finding,) = compare(a, b).findings
    assert finding.kind == "unprotected" and "protect" in finding.reason


def test_changing_a_non_stateful_input_is_a_plain_update(tmp_path):
    a = plan()
    b = copy.deepcopy(a)
    lt = first(b, "aws:ec2/launchTemplate:LaunchTemplate")
    old = lt["inputs"]["instanceType"]
    lt["inputs"]["instanceType"] = new = "t3.xlarge" if old != "t3.xlarge" else "t3.large"
    assert run_diff(tmp_path, a, b) == 0
    (change,) = compare(a, b).resources
    assert change.action == "update" and not change.stateful
    assert [(c.path, c.old, c.new) for c in change.changes] == [("instanceType", old, new)]


def test_replacing_a_non_stateful_resource_does_not_fail(tmp_path):
    a = plan()
    b = copy.deepcopy(a)
    first(b, "aws:ec2/subnet:Subnet")["inputs"]["cidrBlock"] = "10.9.0.0/24"
    d = compare(a, b)
    assert [r.action for r in d.resources] == ["replace"] and not d.findings
    assert run_diff(tmp_path, a, b) == 0


def test_in_place_changes_to_stateful_resources_pass():
    a = plan()
    b = copy.deepcopy(a)
    primary(b)["inputs"]["instanceClass"] = "db.m6g.large"
    primary(b)["inputs"]["allocatedStorage"] = 200
    d = compare(a, b)
    assert [r.action for r in d.resources] == ["update"] and d.exit_code(False) == 0


def test_unknown_values_claim_no_change():
    a = plan()
    b = copy.deepcopy(a)
    primary(b)["inputs"]["dbName"] = "<unknown>"
    primary(b)["inputs"]["vpcSecurityGroupIds"] = ["<unknown>"]
    assert compare(a, b).resources == []


def test_ignore_changes_hides_a_change():
    a = plan("phase1")
    b = copy.deepcopy(a)
    vm = first(b, "aws:ec2/instance:Instance")
    assert "ami" in vm["options"]["ignoreChanges"]
    vm["inputs"]["ami"] = "ami-0123456789abcdef0"
    assert compare(a, b).resources == []


def test_user_data_replaces_an_instance_when_it_says_so_and_nothing_ignores_it():
    a = plan("phase1")
    for vm in (first(a, "aws:ec2/instance:Instance"),):
        vm["options"]["ignoreChanges"] = ["ami"]
    b = copy.deepcopy(a)
    vm = first(b, "aws:ec2/instance:Instance")
    vm["inputs"]["userDataBase64"] = userdata.encode(userdata.decode(vm["inputs"]["userDataBase64"]) + "\n# changed")
    (change,) = compare(a, b).resources
    assert change.action == ("replace" if vm["inputs"].get("userDataReplaceOnChange") else "update")


# Settings ansible/configure.yml applies to running hosts (nginx's rate limit and burst), on the
# hosts outside Auto Scaling groups: phase 1's VM, nginx mode's app hosts and LB host.
CONFIGURE_OWNED = [("phase1", {}, {"edge": {"rateLimitPerMinute": 300}}),
                   ("phase1", {}, {"edge": {"burst": 7}}),
                   ("phase2", {"loadBalancer": "nginx"}, {"edge": {"rateLimitPerMinute": 300}})]


@pytest.mark.parametrize("stack,base,change", CONFIGURE_OWNED)
def test_a_configure_owned_setting_never_replaces_a_host_outside_a_group(tmp_path, capsys, stack, base, change):
    """Review aws finding 5: the `up` after configure.yml must not replace the VM (its EIP would move
    to a booting host). The user data differs, `pulumi up` ignores it, and `ladder diff` says so."""
    from tests.unit.plans import plan as plan_of

    a, b = plan_of(stack, **base).to_json(), plan_of(stack, **base, **change).to_json()
    ec2 = "aws:ec2/instance:Instance"
    before = {r["name"]: r["inputs"]["userDataBase64"] for r in a["resources"] if r["type"] == ec2}
    assert before
    changed = {r["name"] for r in b["resources"] if r["type"] == ec2 and r["inputs"]["userDataBase64"] != before[r["name"]]}
    assert changed, "the setting must reach some host's user data, or this test proves nothing"
    d = compare(a, b)
    assert [r.name for r in d.of("replace") if r.type == "aws:ec2/instance:Instance"] == []
    assert {h.name for h in d.held if h.input == "userDataBase64"} == changed
    assert run_diff(tmp_path, a, b, "--markdown") == 0
    out = capsys.readouterr().out
    assert "not applied by `pulumi up`" in out and "ansible/configure.yml" in out


def test_a_read_replica_is_not_stateful():
    replica = {"type": RDS, "inputs": {"replicateSourceDb": "db-1"}, "options": {}}
    assert not is_stateful(replica)
    assert is_stateful({"type": RDS, "inputs": {}, "options": {}})
    assert is_stateful({"type": "aws:s3/bucketV2:BucketV2", "inputs": {}, "options": {}})
    assert is_stateful({"type": "aws:ec2/vpc:Vpc", "inputs": {}, "options": {"retainOnDelete": True}})


def test_two_stacks_compare_as_one_stack_climbing():
    a = plan("phase1")
    renamed = json.loads(json.dumps(a).replace("phase1", "elsewhere"))
    d = compare(a, renamed)
    assert d.resources == [] and d.unchanged == len(a["resources"])


def test_secrets_never_appear_in_diff_output(tmp_path, capsys):
    a, b = plan("phase1"), plan("phase2")
    for flag in ("--json", "--markdown"):
        run_diff(tmp_path, a, b, flag)
    out = capsys.readouterr().out
    assert "Mock-" not in out  # the mocks' generated passwords
    assert '"[secret]"' in json.dumps(b)


def _planned(stacks):
    out = {}
    for s in stacks:
        try:
            out[s] = load(s)
        except Exception as err:  # a phase under construction
            out[s] = err
    return out


def test_climbing_between_consecutive_presets_loses_no_stateful_resource():
    plans = _planned(engine.stack_names())
    ok = [s for s in sorted(plans) if not isinstance(plans[s], Exception)]
    pairs = [(x, y) for x, y in zip(ok, ok[1:]) if plans[y]["phase"] == plans[x]["phase"] + 1]
    assert pairs, "at least phases 1 -> 2 plan"
    for x, y in pairs:
        for direction in ((x, y), (y, x)):  # climbing and stepping back
            d = compare(plans[direction[0]], plans[direction[1]])
            assert not d.losses, f"{direction}: {[f.reason for f in d.losses]}"


def test_git_revision_sources(tmp_path):
    at_head = load("phase1@HEAD")
    assert at_head["stack"] == "phase1" and at_head["resources"]
    with pytest.raises(PlanUnavailable):
        load("phase1@no-such-revision-xyz")
    assert cli.main(["diff", "phase1@no-such-revision-xyz", "phase1"]) == 1


# ---------------------------------------------------------------------------
# What AWS cannot apply in place (ladder/inplace.py, the rules the program also applies)

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


def test_stepping_back_from_phase_4_to_3_exits_3_with_what_aws_cannot_do_first(tmp_path, capsys):
    a, b = plan("phase4"), plan("phase3")
    d = compare(a, b)
    refused = {(r.resource, r.input): r for r in d.refusals}
    assert refused[("redis", "clusterMode")].before == "enabled" and refused[("redis", "clusterMode")].after == "disabled"
    assert "cannot revert cluster mode" in refused[("redis", "clusterMode")].rule
    assert (refused[("db", "allocatedStorage")].before, refused[("db", "allocatedStorage")].after) == (200, 100)
    assert d.exit_code(False) == 3 and d.exit_code(True) == 0
    assert run_diff(tmp_path, a, b) == 3
    out = capsys.readouterr()
    assert out.out.index("AWS cannot apply this in place") < out.out.index("to add")
    assert "Modifying cluster mode" in out.out and "in place" in out.err
    assert run_diff(tmp_path, a, b, "--markdown") == 3
    md = capsys.readouterr().out
    assert md.index("AWS cannot apply this in place") < md.index("to add, ")
    assert "**redis**" in md and "`clusterMode` \"enabled\" -> \"disabled\"" in md
    assert run_diff(tmp_path, a, b, "--allow-destroy") == 0
    capsys.readouterr()
    assert run_diff(tmp_path, a, b, "--json") == 3
    assert {r["input"] for r in json.loads(capsys.readouterr().out)["refusals"]} >= {"clusterMode", "allocatedStorage"}


def test_a_storage_shrink_alone_exits_3_without_any_loss(tmp_path):
    a = plan()
    b = copy.deepcopy(a)
    primary(a)["inputs"]["allocatedStorage"] = 200
    primary(a)["inputs"]["maxAllocatedStorage"] = primary(b)["inputs"]["maxAllocatedStorage"] = 1000  # room above 200
    d = compare(a, b)
    assert not d.losses and [r.action for r in d.resources] == ["update"]
    assert [(r.resource, r.input, r.before) for r in d.refusals] == [(primary(a)["name"], "allocatedStorage", 200)]
    assert run_diff(tmp_path, a, b) == 3


def test_a_redis_engine_downgrade_is_a_replacement_and_a_refusal():
    a = plan()
    b = copy.deepcopy(a)
    first(b, REDIS)["inputs"]["engineVersion"] = "7.0"
    d = compare(a, b)
    assert [r.action for r in d.resources] == ["replace"] and d.losses
    assert [r.input for r in d.refusals] == ["engineVersion"]
