"""Fixes of the cost-model review (/work/shared/reviews, review_cost_model findings 1, 5-10).

Worked examples by hand from the cited figures, never from the code under test.
"""

from __future__ import annotations

import copy

import pytest

from ladder.cost import HOURS, delta_markdown, equal_load_delta, price_plan

from .plans import plan_json

LB = "aws:lb/loadBalancer:LoadBalancer"


def _items(report, sku_prefix: str, name: str | None = None):
    return [i for i in report.items if i.sku.startswith(sku_prefix) and (name is None or i.name == name)]


@pytest.fixture(scope="module")
def diff56() -> dict:
    return equal_load_delta("phase5", "phase6")


def test_diff_5_to_6_names_the_lower_presets_tiers_over_capacity_at_peak(diff56):
    # By hand (finding 1): phase 6's target 250,000 users x 3 req/min / 60 = 12,500 req/s at peak;
    # phase 5's app tier at its maximum, 30 c6i.large at the 40 % target, one Node process per host:
    # min(2 x 0.40, 1) core x 500 req/s = 400 each, x 30 = 12,000 req/s. Jobs: 25M/day / 86,400 / 0.4
    # (average share) = 723.4 jobs/s at peak; 10 workers x 50 jobs/s = 500.
    over = {e["tier"]: e for e in diff56["a"]["capacity_exceeded"]}
    assert set(over) == {"app", "workers"}, over
    assert over["app"]["need"] == pytest.approx(12_500) and over["app"]["max"] == pytest.approx(12_000)
    assert over["workers"]["need"] == pytest.approx(723.4, abs=0.1) and over["workers"]["max"] == pytest.approx(500)
    assert diff56["b"]["capacity_exceeded"] == []  # phase 6 is sized for its own target
    text = delta_markdown(diff56)
    assert "OVER CAPACITY" in text and "app needs 12,500 req/s, maximum 12,000" in text


def _second_internal_nlb(p: dict, first: bool) -> dict:
    """phase 5 with another internal NLB (say an admin API's), placed before or after PgBouncer's."""
    nlb = next(r for r in p["resources"] if r["type"] == LB and r["name"] == "pgbouncer-nlb")
    other = copy.deepcopy(nlb)
    other.update(name="admin-nlb", urn=nlb["urn"].replace("pgbouncer-nlb", "admin-nlb"), id="admin0000")
    p["resources"].insert(0 if first else len(p["resources"]), other)
    return p


@pytest.mark.parametrize("first", [True, False])
def test_a_second_internal_nlb_carries_no_db_traffic(first):
    # By hand (finding 5): phase 5 at its target, 100,000 peak users x 0.4 average share x 730 h x 60 min
    # x 3 requests x 4 KB (kb_db_per_request) / 1e6 = 21,024 GB app <-> DB a month through the PgBouncer
    # NLB: 1 NLCU per GB/h, so 21,024 NLCU-hours there; the admin NLB gets its hours and 0 units.
    base = plan_json("phase5")
    report = price_plan(_second_internal_nlb(copy.deepcopy(base), first), with_band=False)
    (pgb,) = _items(report, "nlb_nlcu_hour", "pgbouncer-nlb")
    (admin,) = _items(report, "nlb_nlcu_hour", "admin-nlb")
    assert pgb.quantity == pytest.approx(21_024, rel=1e-3)
    assert admin.quantity == 0 and "internal_lb_gb" in admin.note
    (hours,) = _items(report, "nlb_hour", "admin-nlb")
    assert hours.quantity == HOURS
    # inter-AZ for app <-> PgBouncer stays on PgBouncer's NLB, once
    hops = [i for i in report.items if i.sku == "inter_az_gb" and "PgBouncer" in i.note and "app <->" in i.note]
    assert [i.name for i in hops] == ["pgbouncer-nlb"]
    plain = price_plan(copy.deepcopy(base), with_band=False)
    assert sum(i.monthly_usd for i in report.items if i.sku == "inter_az_gb") == pytest.approx(
        sum(i.monthly_usd for i in plain.items if i.sku == "inter_az_gb"))


def _usage(tmp_path, **assumptions) -> object:
    f = tmp_path / "usage.yml"
    f.write_text("assumptions:\n" + "".join(f"  {k}: {v}\n" for k, v in assumptions.items()))
    return f


def _pool_usd(report, sku: str) -> float:
    return sum(i.monthly_usd for i in report.items if i.sku == sku)


def test_other_stacks_cloudfront_gb_move_this_stacks_start_to_a_tier_boundary(tmp_path):
    # By hand (finding 6; prices.yaml us-east-1 cloudfront_gb_out: 0.085 to 10,240 GB, 0.080 to 51,200,
    # 0.060 to 153,600, 0.040 to 512,000). Phase 6: 250,000 x 0.4 x 730 = 73M user-hours; API 73M x 180 x
    # 10 KB = 131,400 GB + static 73M x 400 KB = 29,200 GB = 160,600 GB. Other stacks 50,176 GB, free 1,024:
    # this stack's paid units start at 50,176 + 1,024 = 51,200, the 0.060 tier's first unit:
    # (153,600 - 51,200) x 0.060 + (50,176 + 160,600 - 153,600 = 57,176) x 0.040 = 6,144 + 2,287.04 = 8,431.04.
    p = plan_json("phase6")
    report = price_plan(p, _usage(tmp_path, account_other_cloudfront_gb=50_176), with_band=False)
    assert sum(i.quantity for i in report.items if i.sku == "cloudfront_gb_out") == pytest.approx(160_600)
    assert _pool_usd(report, "cloudfront_gb_out") == pytest.approx(8_431.04, abs=0.02)
    # one GB fewer elsewhere: that GB of this stack's falls in the 0.080 tier
    one_less = price_plan(p, _usage(tmp_path, account_other_cloudfront_gb=50_175), with_band=False)
    assert _pool_usd(one_less, "cloudfront_gb_out") == pytest.approx(8_431.04 + 0.080 - 0.040, abs=0.02)


def test_other_stacks_egress_gb_and_no_free_tier(tmp_path):
    # By hand: phase 1 egress 642.4 GB (review: (642.4 - 100) x 0.09 = 48.82 alone). Other stacks 10,140 GB,
    # the stack's 100 free GB after them: paid units from 10,240 on, all at 0.085: 542.4 x 0.085 = 46.10.
    # With free_allowance_share 0 as well: units 10,140 .. 10,782.4: 100 x 0.09 + 542.4 x 0.085 = 55.10.
    p = plan_json("phase1")
    report = price_plan(p, _usage(tmp_path, account_other_egress_gb=10_140), with_band=False)
    assert _pool_usd(report, "data_transfer_out_gb") == pytest.approx(46.10, abs=0.02)
    none_free = price_plan(p, _usage(tmp_path, account_other_egress_gb=10_140, free_allowance_share=0),
                           with_band=False)
    assert _pool_usd(none_free, "data_transfer_out_gb") == pytest.approx(55.10, abs=0.02)
    with pytest.raises(ValueError, match="account_other_egress_gb"):
        price_plan(p, _usage(tmp_path, account_other_egress_gb=-1), with_band=False)


def test_node_group_without_launch_template_uses_disk_size():
    # Finding 10: no launch template -> EKS gives each node diskSize GB (CreateNodegroup API: diskSize,
    # 20 GiB by default for Linux); 50 GB x nodes.
    p = plan_json("phase6")
    group = next(r for r in p["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup")
    group["inputs"].pop("launchTemplate")
    group["inputs"]["diskSize"] = 50
    report = price_plan(copy.deepcopy(p), with_band=False)
    (hours,) = _items(report, "ec2_instance_hour", group["name"])
    (disk,) = _items(report, "ebs_gp3_gb_month", group["name"])
    assert disk.quantity == pytest.approx(50 * hours.quantity / HOURS)
    del group["inputs"]["diskSize"]
    (default,) = _items(price_plan(p, with_band=False), "ebs_gp3_gb_month", group["name"])
    assert default.quantity == pytest.approx(20 * hours.quantity / HOURS)


def _public_subnet(p: dict, az: str) -> None:
    sub = copy.deepcopy(next(r for r in p["resources"] if r["type"] == "aws:ec2/subnet:Subnet"
                             and "kubernetes.io/role/elb" in (r["inputs"].get("tags") or {})))
    sub.update(name="network-public-2", urn=sub["urn"][:-1] + "2", id="subnet-public2")
    sub["inputs"]["availabilityZone"] = az
    p["resources"].append(sub)


def test_kubernetes_ingress_has_one_public_ipv4_per_discovered_az():
    # Finding 8: the controller puts an internet-facing ALB in one kubernetes.io/role/elb subnet per AZ;
    # a third tagged public subnet in another AZ -> 3 public IPv4s x 730 h = 2,190 IPv4-hours.
    p = plan_json("phase6")
    ingress = next(r for r in p["resources"] if r["type"] == "kubernetes:networking.k8s.io/v1:Ingress")
    (two,) = _items(price_plan(copy.deepcopy(p), with_band=False), "public_ipv4_hour", ingress["name"])
    assert two.quantity == 2 * HOURS
    _public_subnet(p, "us-east-1c")
    (three,) = _items(price_plan(copy.deepcopy(p), with_band=False), "public_ipv4_hour", ingress["name"])
    assert three.quantity == 3 * HOURS
    ingress["inputs"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/subnets"] = "subnet-a,subnet-b"
    (listed,) = _items(price_plan(p, with_band=False), "public_ipv4_hour", ingress["name"])
    assert listed.quantity == 2 * HOURS


def test_elasticache_snapshots_hold_the_shards_memory_times_the_fill_share():
    # Finding 9, by hand: phase 6 runs 3 shards of cache.m6g.large (6.38 GiB each, AWS node table in
    # aws_facts.ELASTICACHE_NODE_SPECS), 7 daily snapshots, one free: 3 x 6.38 x 0.5 = 9.57 GB x 6 = 57.42
    # GB-month x $0.085 = $4.88 (was 6 x 1 GB = $0.51 for every phase).
    (snap,) = _items(price_plan(plan_json("phase6"), with_band=False), "elasticache_backup_gb_month")
    assert snap.quantity == pytest.approx(57.42, abs=0.01)
    assert snap.monthly_usd == pytest.approx(4.88, abs=0.01)
    assert "redis_fill_share" in snap.note


def test_no_internet_entry_is_said_not_silent():
    # Finding 7: phase 1's VM made private (no public address, no Elastic IP): its egress has no entry.
    p = plan_json("phase1")
    p["resources"] = [r for r in p["resources"] if r["type"] != "aws:ec2/eip:Eip"]
    for r in p["resources"]:
        if r["type"] == "aws:ec2/instance:Instance":
            r["inputs"]["associatePublicIpAddress"] = False
    report = price_plan(p, with_band=False)
    (line,) = [i for i in report.items if i.sku == "data_transfer_out_gb"]
    assert line.monthly_usd == 0 and "NOT priced" in line.note and line.quantity > 0
    # with its entry, no such line
    assert not any("NOT priced" in i.note for i in price_plan(plan_json("phase1"), with_band=False).items)
