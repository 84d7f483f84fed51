"""The PR summary comment (`ladder/review_comment.py`): one summary across stacks, numbers a
reviewer can trust (counts, % change, unpriced resources, price date), what a change sets in
motion, and bodies GitHub accepts, in reading order, that the comment script will post."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from ladder import engine, userdata
from ladder.cost import equal_load, price_plan
from ladder.diff import compare
from ladder.policy import Violation, check
from ladder.prices import catalog
from ladder.review import StackResult
from ladder.review_comment import GITHUB_LIMIT, part_marker, render, write

from .plans import plan

BASE = "origin/main"
SHA = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"
WHEN = "2026-12-02 01:00 UTC"


def as_json(stack: str) -> dict[str, Any]:
    return copy.deepcopy(plan(stack).to_json())


def result(stack: str, base: dict[str, Any], head: dict[str, Any], status: str = "ok") -> StackResult:
    base, head = copy.deepcopy(base), copy.deepcopy(head)
    base["source"], head["source"] = f"{stack}@{BASE}", stack
    return StackResult(stack, status, compare(base, head), base, head, None, base_rev=BASE)  # type: ignore[arg-type]


def one(stack: str, res_type: str, name: str, p: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in p["resources"] if r["type"] == res_type and r["name"] == name)


def with_opensearch(p: dict[str, Any]) -> dict[str, Any]:
    """`p` plus an added resource type the cost model has no price for."""
    p = copy.deepcopy(p)
    stack_urn = next(r["urn"] for r in p["resources"] if r["type"] == "aws:s3/bucket:Bucket").split("$")[0]
    p["resources"].append({"urn": f"{stack_urn}$aws:opensearch/domain:Domain::search", "id": "search-1",
                           "type": "aws:opensearch/domain:Domain", "name": "search", "parent": None, "custom": True,
                           "inputs": {"clusterConfig": {"instanceType": "r6g.large.search", "instanceCount": 3}},
                           "options": {}})
    return p


def lt_change(p: dict[str, Any], lt: str = "fleet-app", instance_type: str = "m6i.large") -> dict[str, Any]:
    p = copy.deepcopy(p)
    one("", "aws:ec2/launchTemplate:LaunchTemplate", lt, p)["inputs"]["instanceType"] = instance_type
    return p


def row_of(body: str, stack: str) -> list[str]:
    line = next(x for x in body.splitlines() if x.startswith(f"| `{stack}` |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def climb() -> tuple[list[StackResult], list[str]]:
    """A PR across several stacks: phase3 climbs from a phase2 tree, phase4's app template
    changes, phase5 adds an unpriced OpenSearch domain, phase1 does not change."""
    p1 = as_json("phase1")
    results = [result("phase1", p1, p1), result("phase3", as_json("phase2"), as_json("phase3")),
               result("phase4", as_json("phase4"), lt_change(as_json("phase4"))),
               result("phase5", as_json("phase5"), with_opensearch(as_json("phase5")))]
    return results, render(results, base_rev=BASE, head_sha=SHA, run_time=WHEN)


def test_one_row_per_changed_stack_with_counts_and_percent(climb):
    results, bodies = climb
    summary = bodies[0]
    columns = row_of(summary.replace("| stack |", "| `stack` |"), "stack")
    for r in results[1:]:
        cells = dict(zip(columns, row_of(summary, r.stack)))
        s = r.diff.summary()
        assert [cells["add"], cells["change"], cells["replace"], cells["remove"]] == \
            [str(s["add"]), str(s["update"]), str(s["replace"]), str(s["remove"])], r.stack
    # a phase change is priced at one load (the higher phase's target), as `cost --diff` does
    users, messages = equal_load(results[1].base_plan, results[1].head_plan)
    before, after = (price_plan(p, users=users, messages_per_day=messages).total
                     for p in (results[1].base_plan, results[1].head_plan))
    cells = dict(zip(columns, row_of(summary, "phase3")))
    assert cells["phase"] == "2 → 3"
    assert cells["USD/month"] == f"{after - before:+,.2f}"
    assert cells["%"] == f"{(after - before) / before * 100:+.1f}%"
    assert summary.count("| `phase") == 3, "one row per changed stack, none for phase1"


def test_unchanged_stacks_are_named_in_one_line_without_a_section(climb):
    _, bodies = climb
    text = "\n".join(bodies)
    assert "No change in: `phase1`." in bodies[0]
    assert "<summary><b>phase1" not in text and "| `phase1` |" not in text


def test_an_added_unpriced_type_shows_as_unpriced_not_zero(climb):
    _, bodies = climb
    cells = row_of(bodies[0], "phase5")
    assert "? (1 unpriced)" in cells and "+0.00" not in cells
    section = bodies[0][bodies[0].index("<summary><b>phase5"):]
    assert "**search** `aws:opensearch/domain:Domain` (added by this change)" in section


def test_an_added_unpriced_type_next_to_a_priced_change_shows_both():
    base = as_json("phase4")
    r = result("phase4", base, with_opensearch(lt_change(base)))
    (body,) = render([r], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    users, messages = equal_load(r.base_plan, r.head_plan)
    before, after = (price_plan(p, users=users, messages_per_day=messages).total for p in (r.base_plan, r.head_plan))
    assert round(after - before, 2), "the template change is priced"
    assert f"{after - before:+,.2f} + 1 unpriced" in row_of(body, "phase4")


def test_price_date_usage_share_head_commit_and_run_time_are_shown(climb):
    results, bodies = climb
    summary = bodies[0]
    assert f"as of {catalog().meta('us-east-1')['retrieved']}" in summary
    head = price_plan(results[2].head_plan)
    share = sum(i.monthly_usd for i in head.items if i.usage_driven) / head.total
    section = summary[summary.index("<summary><b>phase4"):]
    assert f"{share:.0%} of the new total rests on usage assumptions" in section
    assert f"`{SHA[:12]}`" in summary and WHEN in summary


def test_a_launch_template_change_names_the_group_it_rolls(climb):
    results, bodies = climb
    section = bodies[0][bodies[0].index("<summary><b>phase4"):]
    asg = one("", "aws:autoscaling/group:Group", "fleet-app", results[2].head_plan)["inputs"]["name"]
    assert f"Launch template `fleet-app` changes (`instanceType`): rolls every instance of Auto Scaling group " \
           f"`fleet-app` ({asg})" in section
    # the group is found by the template id it references, not by a shared name
    head = lt_change(as_json("phase4"))
    one("", "aws:autoscaling/group:Group", "fleet-app", head)["inputs"]["launchTemplate"]["id"] = "lt-other"
    (body,) = render([result("phase4", as_json("phase4"), head)], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    assert "Launch template `fleet-app` changes (`instanceType`): no group in this stack uses it" in body


def test_a_pod_template_change_rolls_the_deployments_pods():
    head = as_json("phase6")
    dep = one("", "kubernetes:apps/v1:Deployment", "apps-app", head)
    dep["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
    dep["inputs"]["spec"]["replicas"] = 7
    (body,) = render([result("phase6", as_json("phase6"), head)], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    name = dep["inputs"]["metadata"]["name"]
    assert re.search(rf"Deployment `\w+/{name}`: its pod template changes \(`spec.containers\[0\].image`\), so every "
                     r"pod is replaced by a rolling update", body)
    assert re.search(rf"Deployment `\w+/{name}`: `spec.replicas` from .+ to 7 pods", body)


def test_user_data_change_on_the_phase1_host_is_held_and_says_who_applies_it():
    """Hosts outside Auto Scaling groups ignore user-data changes (components/app_host.py): the
    comment must say `pulumi up` will not apply the change and which playbook does, never that
    nothing happens."""
    base, head = as_json("phase1"), as_json("phase1")
    host = one("", "aws:ec2/instance:Instance", "app", head)
    text = userdata.decode(host["inputs"]["userDataBase64"])
    host["inputs"]["userDataBase64"] = userdata.encode(text.replace("runcmd:", "runcmd:\n  - echo reviewed", 1))
    (body,) = render([result("phase1", base, head)], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    assert "`app` `userDataBase64` changes: user data not applied by `pulumi up`" in body
    assert "ansible/configure.yml" in body and "REPLACED" not in body


def test_key_inputs_of_added_resources(climb):
    results, bodies = climb
    section = bodies[0][bodies[0].index("<summary><b>phase3"):]
    replica = one("", "aws:rds/instance:Instance", "db-replica-0", results[1].head_plan)["inputs"]
    row = next(x for x in section.splitlines() if x.startswith("| db-replica-0 | rds Instance |"))
    assert f"`instanceClass=\"{replica['instanceClass']}\"`" in row


def test_policy_results_per_stack():
    p2 = plan("phase2")
    violations = check(p2) + [Violation("no-public-db", "mandatory", "urn:x", "aws:rds/instance:Instance", "db",
                                        "db is publicly accessible")]
    head = lt_change(as_json("phase2"), "fleet-app", "t3.xlarge")
    (body,) = render([result("phase2", as_json("phase2"), head)], base_rev=BASE, head_sha=SHA, run_time=WHEN,
                     policy={"phase2": violations})
    assert "**1 fail**" in row_of(body, "phase2")[7]
    assert "| `no-public-db` | **mandatory** | db | db is publicly accessible |" in body


def test_a_failing_stack_and_its_multi_line_error_stay_in_the_caution_box():
    err = StackResult("phase3", "head-error", None, None, None, "ConfigError: scaleladder:cache.nodeType\n"
                      "  allowed: cache.t4g.micro, cache.r7g.large\n| not a table |", base_rev=BASE)
    (body,) = render([err], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    assert "Needs attention: `phase3`" in body and "**head-error**" in row_of(body, "phase3")
    box = body[body.index("> [!CAUTION]\n> `phase3` does not plan"):].split("\n\n")[0].splitlines()
    assert all(line.startswith(">") for line in box)
    assert "| not a table |" in "\n".join(box)


def test_refusals_come_first_in_the_section_and_in_the_row():
    base = as_json("phase4")
    r = result("phase4", base, lt_change(base))
    refusal = type("Refusal", (), {"name": "redis", "type": "aws:elasticache/replicationGroup:ReplicationGroup",
                                   "reason": "clusterMode enabled -> disabled: AWS cannot revert cluster mode"})()
    r.diff.refusals = [refusal]  # type: ignore[union-attr]
    (body,) = render([r], base_rev=BASE, head_sha=SHA, run_time=WHEN)
    assert "**1 refused**" in row_of(body, "phase4")[6]
    section = body[body.index("<summary><b>phase4"):]
    assert section.index("AWS cannot apply this in place") < section.index("What this sets in motion")
    assert "AWS cannot revert cluster mode" in section


def huge(p: dict[str, Any], extra: int = 3000) -> dict[str, Any]:
    b = copy.deepcopy(p)
    for r in b["resources"]:
        r["inputs"] = {**r["inputs"], "description": "changed-" + "y" * 300}
    template = b["resources"][0]
    for i in range(extra):
        new = copy.deepcopy(template)
        new.update(urn=f"{template['urn']}-extra-{i}", name=f"extra-{i}-" + "z" * 60)
        b["resources"].append(new)
    return b


def test_bodies_fit_githubs_limit_split_in_reading_order_and_post_through_the_script(tmp_path):
    p2, p3 = as_json("phase2"), as_json("phase3")
    results = [result("phase2", p2, huge(p2)), result("phase3", p3, lt_change(p3))]
    bodies = render(results, base_rev=BASE, head_sha=SHA, run_time=WHEN)
    assert len(bodies) > 2, "the forced diff needs follow-up parts"
    for n, body in enumerate(bodies, 1):
        assert len(body) <= GITHUB_LIMIT
        assert body.startswith(part_marker(n, len(bodies)) + "\n")
        assert body.count("<details") == body.count("</details>"), f"part {n} leaves a <details> open"
    text = "\n".join(bodies)
    assert text.index("<summary><b>phase2") < text.index("continued 2") < text.index("<summary><b>phase3")
    assert "| `phase3` |" in bodies[0] and "| `phase2` |" in bodies[0], "the summary table is in part 01"
    # the comment script accepts exactly what `write` produced, in this order
    paths = write(tmp_path, bodies)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == {"marker": "scaleladder-review", "parts": [p.name for p in paths]}
    node = shutil.which("node")
    assert node, "scripts/setup installs node"
    proc = subprocess.run([node, "-e", "const s = require('./.github/scripts/review-comments.js');"
                           f"console.log(JSON.stringify(s.readParts({json.dumps(str(tmp_path))}).map(s.partOf)))"],
                          cwd=engine.REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == list(range(1, len(bodies) + 1))
