"""`ladder cost`, the price catalog and `ladder prices refresh`: properties, no golden totals."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from ladder import cli, engine
from ladder.cost import HOURS, RULES, bands, cost_of, delta, equal_load_delta, price_plan
from ladder.phases import PHASES
from ladder.prices import CATALOG_PATH, catalog

from .plans import plan_json


def presets() -> dict[str, dict | Exception]:
    out: dict[str, dict | Exception] = {}
    for stack in engine.stack_names():
        try:
            out[stack] = plan_json(stack)  # ladder.diff.load(stack)'s plan, shared by the test workers
        except Exception as err:  # a phase under construction: reported as a skip, never as a pass
            out[stack] = err
    return out


PRESETS = presets()


def planned(stack: str) -> dict:
    p = PRESETS[stack]
    if isinstance(p, Exception):
        pytest.skip(f"{stack} does not plan yet: {type(p).__name__}: {p}")
    return copy.deepcopy(p)


def items(report, sku_prefix: str, name: str | None = None):
    return [i for i in report.items if i.sku.startswith(sku_prefix) and (name is None or i.name == name)]


# ---------------------------------------------------------------------------
# catalog


def test_catalog_covers_three_regions_with_date_source_and_units():
    cat = catalog()
    assert {"us-east-1", "eu-west-1", "eu-central-1"} <= set(cat.regions)
    for region, tables in cat.regions.items():
        assert tables["retrieved"] and tables["source"], region
        # `unpriced_types`: the types `prices refresh --add-type` found no product for (ladder/prices_refresh.py)
        assert set(tables) - {"retrieved", "source", "unpriced_types"} == set(cat.tables), \
            f"{region}: tables differ from `tables:`"
        for table, value in tables.items():
            if table in cat.tables:
                if isinstance(value, list):  # a tiered table (shared_formats.md): declared so, tiers parse
                    assert cat.tables[table].get("tiered") is True, (region, table)
                    prices = [usd for _, usd in cat.tiers(region, table)]
                    assert prices == sorted(prices, reverse=True), f"{region}.{table}: tiers must get cheaper"
                else:
                    assert not cat.tables[table].get("tiered"), f"{region}.{table}: `tiered: true` needs a tier list"
                    prices = list(value.values()) if isinstance(value, dict) else [value]
                assert all(float(p) > 0 for p in prices), (region, table)
    assert all(spec.get("unit") for spec in cat.tables.values())


def test_per_type_tables_list_the_same_types_in_every_region():
    """A region may list fewer types of a per-type table only where its block says why
    (`unpriced_types`: the config then refuses them there, naming the key); it never lists a
    type no other region prices without that being the region all others follow (us-east-1)."""
    cat = catalog()
    for table in ("ec2_instance_hour", "rds_postgres_instance_hour", "elasticache_node_hour"):
        keys = {region: set(cat.instance_types(region, table)) for region in cat.regions}
        everywhere = set.union(*keys.values())
        assert keys["us-east-1"] == everywhere, (table, sorted(everywhere - keys["us-east-1"]))
        for region, types in keys.items():
            why = (cat.regions[region].get("unpriced_types") or {}).get(table, "")
            assert types == everywhere or len(str(why)) > 20, (region, table, sorted(everywhere - types))
            assert not why or types != everywhere, (region, table, "unpriced_types says types are missing; none are")


def test_aws_types_are_priced_or_free_never_both():
    cat = catalog()
    assert not [t for t in RULES if t.startswith("aws:") and cat.is_free(t)]


@pytest.mark.parametrize("stack", sorted(PRESETS))
def test_every_resource_type_in_the_presets_is_priced_or_free(stack):
    p = planned(stack)
    cat = catalog()
    unpriced = sorted({r["type"] for r in p["resources"] if r["type"] not in RULES and not cat.is_free(r["type"])})
    assert unpriced == [], f"add a rule in ladder/cost.py or a `free` entry in {CATALOG_PATH.name}"
    assert price_plan(p).unpriced == []


# ---------------------------------------------------------------------------
# cost of the presets


def test_cost_grows_with_each_phase():
    reports = {p["phase"]: price_plan(p) for p in PRESETS.values() if not isinstance(p, Exception)}
    phases = sorted(reports)
    assert len(phases) >= 2
    for lower, upper in zip(phases, phases[1:]):
        assert reports[upper].total >= reports[lower].total, (lower, upper)


@pytest.mark.parametrize("stack", sorted(PRESETS))
def test_usage_driven_items_are_never_zero(stack):
    report = price_plan(planned(stack))
    usage = [i for i in report.items if i.usage_driven]
    assert usage and all(i.monthly_usd > 0 for i in usage), [i.sku for i in usage if i.monthly_usd <= 0]
    assert items(report, "data_transfer_out_gb") or items(report, "cloudfront_gb_out"), "internet egress is priced"


@pytest.mark.parametrize("stack", sorted(PRESETS))
def test_per_1000_users_follows_the_capacity_target(stack):
    report = price_plan(planned(stack))
    users = PHASES[report.phase].concurrent_users
    assert report.per_1000_users == pytest.approx(report.total / users * 1000, abs=0.01)
    assert sum(report.components().values()) == pytest.approx(report.total, abs=0.05)


def test_multi_az_doubles_the_rds_instance_cost():
    p = planned("phase2")
    db = next(r for r in p["resources"] if r["type"] == "aws:rds/instance:Instance")
    db["inputs"]["multiAz"] = True
    multi = items(price_plan(p), "rds_postgres_instance_hour", db["name"])
    db["inputs"]["multiAz"] = False
    single = items(price_plan(p), "rds_postgres_instance_hour", db["name"])
    assert multi[0].monthly_usd == pytest.approx(2 * single[0].monthly_usd, abs=0.01)


def test_a_group_the_model_does_not_size_is_priced_at_desired_capacity():
    p = planned("phase3")
    asg = next(r for r in p["resources"] if r["type"] == "aws:autoscaling/group:Group" and r["name"] == "pgbouncer")
    asg["inputs"].update(desiredCapacity=3, maxSize=3)
    (hours,) = items(price_plan(p), "ec2_instance_hour", asg["name"])
    assert hours.quantity == 3 * HOURS
    del asg["inputs"]["desiredCapacity"]
    (hours,) = items(price_plan(p), "ec2_instance_hour", asg["name"])
    assert hours.quantity == asg["inputs"]["minSize"] * HOURS


def _count(report, name: str) -> float:
    (hours,) = items(report, "ec2_instance_hour", name)
    return hours.quantity / HOURS


def test_app_hosts_follow_the_load_within_the_group_bounds():
    """Compute is counted at the priced load (capacity model), not at the group minimum."""
    p = planned("phase5")
    group = next(r for r in p["resources"] if r["type"] == "aws:autoscaling/group:Group" and r["name"] == "fleet-app")
    low, high = group["inputs"]["minSize"], group["inputs"]["maxSize"]
    counts = [_count(price_plan(p, users=u, with_band=False), "fleet-app")
              for u in (1_000, 50_000, 100_000, 200_000, 400_000, 10_000_000)]
    assert counts == sorted(counts), "more users never means fewer hosts"
    assert counts[0] == low and counts[-1] == high and low < counts[2] < high, counts


def test_users_raise_eks_nodes_monotonically():
    p = planned("phase6")
    counts = [_count(price_plan(p, users=u, with_band=False), "eks-nodes")
              for u in (10_000, 100_000, 250_000, 500_000)]
    assert counts == sorted(counts) and counts[-1] > counts[0], counts


def test_diff_phase5_to_phase6_at_equal_load_keeps_compute_and_explains_every_line():
    d = equal_load_delta("phase5", "phase6")
    # both priced at phase 6's target: the same users and messages on either side
    assert d["load"] == {"peak_concurrent_users": PHASES[6].concurrent_users,
                         "messages_per_day": PHASES[6].messages_per_day}
    a, b = d["a"]["compute_monthly_usd"], d["b"]["compute_monthly_usd"]
    # stated band: at equal load the platform change may move compute by a third either way, not more
    assert 0.67 <= b / a <= 1.5, (a, b)
    assert sum(ln["delta"] for ln in d["lines"]) == pytest.approx(d["total_delta_usd"], abs=0.5)
    for component, row in d["components"].items():
        lines = [ln["delta"] for ln in d["lines"] if ln["component"] == component]
        assert sum(lines) == pytest.approx(row["delta"], abs=0.05), component
        assert bool(lines) == bool(row["delta"]), component
    assert d["a"]["per_1000_users_usd"] == pytest.approx(d["a"]["total_monthly_usd"] / PHASES[6].concurrent_users * 1000,
                                                         abs=0.01)


def test_diff_users_flag_sets_the_load_for_both_sides(capsys):
    assert cli.main(["cost", "--diff", "phase4", "phase5", "--users", "75000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["load"]["peak_concurrent_users"] == 75_000
    assert d["load"]["messages_per_day"] == 75_000 * PHASES[5].messages_per_day / PHASES[5].concurrent_users
    assert cli.main(["cost", "--diff", "phase4", "phase5", "--users", "75000", "--markdown"]) == 0
    assert "both priced at 75,000 peak concurrent users" in capsys.readouterr().out


@pytest.mark.parametrize("stack", ["phase2", "phase6"])
def test_usage_band_lean_default_heavy_are_ordered(stack):
    report = price_plan(planned(stack))
    assert list(report.band) == list(bands()) == ["lean", "default", "heavy"]
    assert report.band["lean"] <= report.band["default"] <= report.band["heavy"], report.band
    assert report.band["default"] == pytest.approx(report.total, abs=0.01)
    assert report.band["lean"] < report.band["heavy"]


def test_elasticache_nodes_are_shards_times_one_plus_replicas():
    p = planned("phase2")
    group = next(r for r in p["resources"] if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup")
    group["inputs"].update({"clusterMode": "enabled", "numNodeGroups": 3, "replicasPerNodeGroup": 1})
    group["inputs"].pop("numCacheClusters", None)
    (nodes,) = items(price_plan(p), "elasticache_valkey_node_hour")  # the presets run Valkey (stacks/*.yaml)
    assert nodes.quantity == 6 * HOURS


def test_each_read_replica_is_an_instance():
    p = planned("phase2")
    db = next(r for r in p["resources"] if r["type"] == "aws:rds/instance:Instance")
    for i in range(2):
        replica = copy.deepcopy(db)
        replica.update(name=f"db-replica-{i}", urn=db["urn"] + f"-replica-{i}")
        replica["inputs"] = {"instanceClass": db["inputs"]["instanceClass"], "replicateSourceDb": "db-1"}
        p["resources"].append(replica)
    report = price_plan(p)
    assert len(items(report, "rds_postgres_instance_hour")) == 3
    storage = {i.name: i.quantity for i in items(report, "rds_gp3_gb_month")}
    assert storage["db-replica-0"] == db["inputs"]["allocatedStorage"]  # a replica stores as much as its source


def test_cost_json_line_items_carry_the_required_fields(capsys):
    assert cli.main(["cost", "phase1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    required = {"resource", "type", "sku", "quantity", "unit", "unit_price_usd", "monthly_usd", "usage_driven",
                "component"}
    assert data["items"] and all(required <= set(i) for i in data["items"])
    assert all(i["resource"].startswith("urn:pulumi:") for i in data["items"])
    assert {"total_monthly_usd", "per_1000_users_usd", "components", "prices", "capacity", "usage"} <= set(data)


def test_cost_diff_gives_the_delta_per_component(capsys):
    a, b = cost_of("phase1"), cost_of("phase2")
    d = delta(a, b)
    assert sum(r["delta"] for r in d["components"].values()) == pytest.approx(d["total_delta_usd"], abs=0.05)
    assert cli.main(["cost", "--diff", "phase1", "phase2", "--markdown"]) == 0
    assert "| component | before | after | delta |" in capsys.readouterr().out


def test_a_usage_file_pins_measured_figures(tmp_path):
    usage = tmp_path / "usage.yml"
    usage.write_text(yaml.safe_dump({"monthly": {"egress_gb": 1234}}))
    report = cost_of("phase2", usage)
    (egress,) = items(report, "data_transfer_out_gb", "fleet-alb")  # the NAT gateway's egress is its own line
    assert egress.quantity == 1234 and egress.usage_driven
    usage.write_text(yaml.safe_dump({"monthly": {"no_such_quantity": 1}}))
    with pytest.raises(ValueError, match="no_such_quantity"):
        cost_of("phase2", usage)

