"""The first `up` on a stack deployed from a599ad3 (review_aws finding 1).

a599ad3 let Pulumi auto-name the RDS primary (`db-xxxxxxx`) and wrote no `dbIdentifier`
output; it exported `postgresql`/`upgrade` logs, so RDS already made their
/aws/rds/instance/<id>/... log groups. The program must keep the deployed identifier (a new
one replaces the primary: ladder/aws_facts.py) and must not create log groups with those
names (CloudWatch Logs answers ResourceAlreadyExistsException) until the operator imported them.
"""

from __future__ import annotations

import pytest

from components.signals import deployed_rds_identifier, rds_log_groups_managed
from ladder import engine
from ladder.diff import compare
from ladder.names import name_prefix

from .plans import plan, stack_values

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DB = "aws:rds/instance:Instance"
AUTO = "db-1a2b3c4"  # what Pulumi's auto-naming gave a599ad3's primary


def a599ad3_outputs(stack: str) -> dict:
    """The outputs a599ad3's `up` left: no dbIdentifier, no dbLogGroups, an auto-named address."""
    out = {k: v for k, v in engine.public(plan(stack).outputs).items() if k not in ("dbIdentifier", "dbLogGroups")}
    out["dbAddress"] = f"{AUTO}.cabcdef123456.us-east-1.rds.amazonaws.com"
    return out


def rds_log_groups(p: engine.Plan) -> list[str]:
    return sorted(str(r.inputs.get("name")) for r in p.of_type(LOG_GROUP)
                  if str(r.inputs.get("name")).startswith("/aws/rds/"))


@pytest.mark.parametrize("stack", ["phase1", "phase3", "phase6"])
def test_upgrade_keeps_the_auto_named_primary_and_leaves_rds_log_groups(stack):
    after = engine.run(stack, previous_outputs=a599ad3_outputs(stack))
    assert after.one(DB, "db").inputs["identifier"] == AUTO
    replicas = [r for r in after.of_type(DB) if r.name.startswith("db-replica-")]
    assert all(r.inputs["replicateSourceDb"] == AUTO for r in replicas)
    assert rds_log_groups(after) == []
    outputs = engine.public(after.outputs)
    assert outputs["dbIdentifier"] == AUTO and outputs["dbLogGroups"] == []
    # The next `up` (dbIdentifier now recorded, dbLogGroups []) still leaves them alone ...
    again = engine.run(stack, previous_outputs=outputs)
    assert again.one(DB, "db").inputs["identifier"] == AUTO and rds_log_groups(again) == []
    # ... until the operator imported them and says so.
    values = stack_values(stack)
    values["scaleladder:logs"] = {**values.get("scaleladder:logs", {}), "rdsLogGroupsImported": True}
    adopted = engine.run(stack, values=values, previous_outputs=outputs)
    assert rds_log_groups(adopted) == [f"/aws/rds/instance/{AUTO}/postgresql", f"/aws/rds/instance/{AUTO}/upgrade"]
    assert engine.public(adopted.outputs)["dbLogGroups"] == rds_log_groups(adopted)
    # then the output carries it: the key may go
    assert rds_log_groups(engine.run(stack, previous_outputs=engine.public(adopted.outputs))) == rds_log_groups(adopted)


def test_upgrade_is_no_stateful_loss_against_the_same_stack_with_the_recorded_identifier():
    """`ladder diff`'s rules: the a599ad3-style plan's primary, given its real (auto) identifier,
    is neither replaced nor are its replicas."""
    before = engine.run("phase3", previous_outputs={**a599ad3_outputs("phase3"), "dbIdentifier": AUTO,
                                                    "dbLogGroups": []})
    after = engine.run("phase3", previous_outputs=a599ad3_outputs("phase3"))
    d = compare(before.to_json(), after.to_json())
    assert not d.losses and not d.refusals


def test_a_new_stack_gets_its_fixed_identifier_and_log_groups():
    p = plan("phase3")
    ident = f"{name_prefix(p.project, 'phase3')}-db"
    assert p.one(DB, "db").inputs["identifier"] == ident
    assert rds_log_groups(p) == [f"/aws/rds/instance/{ident}/postgresql", f"/aws/rds/instance/{ident}/upgrade"]
    assert engine.public(p.outputs)["dbLogGroups"] == rds_log_groups(p)
    # A stack whose last `up` wrote dbIdentifier (the program made the groups with it) keeps them.
    kept = engine.run("phase3", previous_outputs={k: v for k, v in engine.public(p.outputs).items() if k != "dbLogGroups"})
    assert rds_log_groups(kept) == rds_log_groups(p)


@pytest.mark.parametrize("identifier,address,want", [
    ("scaleladder-x-db", "other.c1.us-east-1.rds.amazonaws.com", "scaleladder-x-db"),
    (None, "db-9f8e7d6.c1.us-east-1.rds.amazonaws.com", "db-9f8e7d6"),
    ("", "", None),
])
def test_deployed_identifier(identifier, address, want):
    assert deployed_rds_identifier(identifier, address) == want


@pytest.mark.parametrize("recorded,identifier,address,imported,want", [
    (None, None, None, False, True),          # new stack
    (None, None, "db-1.c.r.rds.amazonaws.com", False, False),  # a599ad3: RDS made them
    (None, None, "db-1.c.r.rds.amazonaws.com", True, True),    # imported
    ([], "db-1", "db-1.c.r.rds.amazonaws.com", False, False),  # recorded: none managed
    (["/aws/rds/instance/x/postgresql"], "x", "x.c", False, True),
    (None, "x", "x.c", False, True),          # written by the code that made them with dbIdentifier
])
def test_log_groups_managed(recorded, identifier, address, imported, want):
    assert rds_log_groups_managed(recorded, identifier, address, imported) is want
