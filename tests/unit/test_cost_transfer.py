"""Data-transfer pricing in `ladder cost` (issue 17 item 1): volume tiers on the stack's pooled
monthly total, the always-free allowances (`free_allowance_share`, `--no-free-tier`), NAT egress,
inter-AZ transfer from the topology. Every expected figure is worked by hand from the catalog's
cited prices (ladder/catalog/prices.yaml):

- CloudFront US/Europe: first 10,240 GB $0.085, next to 51,200 GB $0.080, next to 153,600 GB $0.060;
  HTTPS $0.01 per 10k (us-east-1); always free 1,024 GB and 10,000,000 requests a month.
- EC2/ELB/NAT egress to the internet: first 10,240 GB $0.09, to 51,200 GB $0.085, to 153,600 GB
  $0.07, then $0.05; 100 GB a month free.
- Inter-AZ: $0.01/GB out of one AZ and $0.01/GB into the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ladder import cli
from ladder.cost import USAGE_DIR, cross_az_share, price_plan
from ladder.phases import PHASES
from ladder.prices import CATALOG_PATH, catalog, parse, tiered_cost
from tests.unit.plans import plan

CDN = "aws:cloudfront/distribution:Distribution"
LB = "aws:lb/loadBalancer:LoadBalancer"
# Quantities Infracost-style tests pin to zero so only the line under test carries traffic.
QUIET = {"api_requests": 0, "static_requests": 0, "average_concurrent_users": 0, "api_gb": 0, "static_gb": 0,
         "egress_gb": 0, "nat_gb": 0, "nat_egress_gb": 0, "db_gb": 0, "cache_gb": 0}
DEFAULTS = yaml.safe_load((USAGE_DIR / "defaults.yml").read_text())["assumptions"]


def res(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:t::scaleladder::{type_}::{name}", "type": type_, "name": name, "custom": True,
            "inputs": inputs, "options": {}}


def s3_distribution(name: str) -> dict[str, Any]:
    """A distribution with an S3 origin only: it carries /static (no app origin)."""
    return res(CDN, name, {"enabled": True, "origins": [{"domainName": f"{name}.s3.amazonaws.com", "originId": "s3"}]})


def price(tmp: Path, resources: list[dict[str, Any]], monthly: dict[str, float], free_share: float = 1.0,
          region: str = "us-east-1") -> Any:
    usage = tmp / "usage.yml"
    usage.write_text(yaml.safe_dump({"assumptions": {"free_allowance_share": free_share},
                                     "monthly": {**QUIET, **monthly}}))
    return price_plan({"stack": "t", "phase": 1, "region": region, "resources": resources}, usage, with_band=False)


def line(report: Any, name: str, sku: str) -> Any:
    (found,) = [i for i in report.items if i.name == name and i.sku == sku]
    return found


# ---------------------------------------------------------------------------
# Tiers


def test_tiered_cost_straddles_the_10_tb_cloudfront_boundary():
    cf = catalog().tiers("us-east-1", "cloudfront_gb_out")
    # 15,000 GB: 10,240 x 0.085 + 4,760 x 0.080 = 870.40 + 380.80
    assert tiered_cost(15_000, cf) == pytest.approx(1_251.20)
    # free 1,024 GB take the first positions: 9,216 x 0.085 + 4,760 x 0.080 = 783.36 + 380.80
    assert tiered_cost(15_000, cf, free=1_024) == pytest.approx(1_164.16)
    assert tiered_cost(10_240, cf) == pytest.approx(870.40)  # exactly the first tier
    assert tiered_cost(800, cf, free=1_024) == 0.0  # all of it free


def test_a_tier_list_without_a_last_unbounded_tier_is_refused():
    data = yaml.safe_load(CATALOG_PATH.read_text())
    data["regions"]["us-east-1"]["cloudfront_gb_out"] = [{"upto": 10240, "usd": 0.085}]
    with pytest.raises(ValueError, match="upto: null"):
        parse(data).tiers("us-east-1", "cloudfront_gb_out")
    assert parse(data).price("us-east-1", "data_transfer_out_gb") == 0.09  # first tier of a tiered table


def test_cloudfront_gb_straddling_10_tb_priced_through_the_tiers(tmp_path):
    report = price(tmp_path, [s3_distribution("cdn")], {"static_gb": 15_000})
    gb = line(report, "cdn", "cloudfront_gb_out")
    assert gb.quantity == 15_000 and gb.monthly_usd == pytest.approx(1_164.16, abs=0.01)  # less the free TB
    flat = (15_000 - 1_024) * 0.085  # the old rule's single rate: $1,187.96
    assert abs(gb.monthly_usd - flat) > 20


def test_the_free_terabyte_and_10_million_requests(tmp_path):
    report = price(tmp_path, [s3_distribution("cdn")], {"static_gb": 800, "static_requests": 12_000_000})
    assert line(report, "cdn", "cloudfront_gb_out").monthly_usd == 0.0  # 800 GB < 1,024 GB free
    # 12M requests = 1,200 x 10k, 1,000 x 10k free: 200 x $0.01
    assert line(report, "cdn", "cloudfront_https_requests_10k").monthly_usd == pytest.approx(2.00)


def test_free_allowance_share_zero_prices_from_the_first_unit(tmp_path):
    report = price(tmp_path, [s3_distribution("cdn")], {"static_gb": 800, "static_requests": 12_000_000},
                   free_share=0)
    assert line(report, "cdn", "cloudfront_gb_out").monthly_usd == pytest.approx(68.00)  # 800 x 0.085
    assert line(report, "cdn", "cloudfront_https_requests_10k").monthly_usd == pytest.approx(12.00)


def test_free_allowance_share_out_of_range_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="free_allowance_share.*from 0"):
        price(tmp_path, [s3_distribution("cdn")], {"static_gb": 1}, free_share=2)


def test_two_distributions_share_one_ladder_and_one_free_terabyte(tmp_path):
    report = price(tmp_path, [s3_distribution("a"), s3_distribution("b")], {"static_gb": 2_000})
    a, b = line(report, "a", "cloudfront_gb_out"), line(report, "b", "cloudfront_gb_out")
    assert a.quantity == b.quantity == 1_000  # the stack's /static split over them, not paid twice
    # one pool: (2,000 - 1,024) x 0.085 = 82.96, half each (a free TB per distribution would make both $0)
    assert a.monthly_usd == b.monthly_usd == pytest.approx(41.48)


def test_egress_pool_apportioned_across_two_load_balancers(tmp_path):
    lbs = [res(LB, n, {"loadBalancerType": "application", "subnets": ["s1", "s2"]}) for n in ("web1", "web2")]
    report = price(tmp_path, lbs, {"egress_gb": 60_000})
    one, two = line(report, "web1", "data_transfer_out_gb"), line(report, "web2", "data_transfer_out_gb")
    # pool 60,000 GB: (10,240 - 100) x 0.09 + 40,960 x 0.085 + 8,800 x 0.07 = 912.60 + 3,481.60 + 616.00
    assert one.quantity == two.quantity == 30_000
    assert one.monthly_usd + two.monthly_usd == pytest.approx(5_010.20, abs=0.01)
    assert one.monthly_usd == pytest.approx(2_505.10)
    # tiering each 30,000 GB alone would give 912.60 + 19,860 x 0.085 = 2,600.70 each
    assert abs(one.monthly_usd - 2_600.70) > 50


# ---------------------------------------------------------------------------
# Preset stacks


def _phase_quantities(phase: int) -> dict[str, float]:
    """The usage quantities worked by hand from usage/defaults.yml and the phase's target."""
    a, spec = DEFAULTS, PHASES[phase]
    user_hours = spec.concurrent_users * a["average_concurrency_share"] * 730
    api = user_hours * 60 * a["requests_per_user_minute"]
    pages = user_hours * a["page_loads_per_user_hour"]
    messages = spec.messages_per_day * 730 / 24
    return {"api_gb": api * a["kb_per_api_response"] / 1e6, "static_gb": pages * a["kb_static_per_page_load"] / 1e6,
            "db_gb": api * a["kb_db_per_request"] / 1e6, "cache_gb": api * a["kb_cache_per_request"] / 1e6,
            "nat_egress_gb": (api * a["kb_nat_per_request"] + messages * a["kb_nat_per_message"]) / 1e6}


def test_nat_egress_joins_the_internet_egress_pool():
    report = price_plan(plan("phase2").to_json(), with_band=False)
    q = _phase_quantities(2)
    alb, nat = line(report, "fleet-alb", "data_transfer_out_gb"), line(report, "network-nat-0", "data_transfer_out_gb")
    assert nat.quantity == pytest.approx(q["nat_egress_gb"], abs=1e-3)
    pool = q["api_gb"] + q["static_gb"] + q["nat_egress_gb"]  # 3,212 + 141.74 GB, all in the first tier
    assert pool < 10_240
    total = (pool - 100) * 0.09
    assert alb.monthly_usd + nat.monthly_usd == pytest.approx(total, abs=0.02)
    assert nat.monthly_usd == pytest.approx(total * q["nat_egress_gb"] / pool, abs=0.01)
    assert alb.unit_price_usd == nat.unit_price_usd  # one ladder


def test_no_free_tier_flag_prices_the_cloudfront_stack_without_allowances(capsys):
    assert cli.main(["cost", "phase5", "--json", "--no-free-tier"]) == 0
    items = {(i["name"], i["sku"]): i for i in json.loads(capsys.readouterr().out)["items"]}
    q = _phase_quantities(5)
    gb = q["api_gb"] + q["static_gb"]  # 64,240 GB through the distribution (the API rides it)
    assert 51_200 < gb < 153_600
    want = 10_240 * 0.085 + 40_960 * 0.080 + (gb - 51_200) * 0.060  # 870.40 + 3,276.80 + 782.40
    assert items[("cdn", "cloudfront_gb_out")]["monthly_usd"] == pytest.approx(want, abs=0.01)
    with_free = price_plan(plan("phase5").to_json(), with_band=False)
    free_gb = line(with_free, "cdn", "cloudfront_gb_out").monthly_usd
    assert free_gb == pytest.approx(want - 1_024 * 0.085, abs=0.01)  # the free TB comes off the first tier


@pytest.mark.parametrize("azs", [2, 3])
def test_inter_az_share_of_the_pgbouncer_path(azs):
    """App hosts, NLB nodes, PgBouncer hosts and the RDS subnet group spread over `azs` AZs. An app
    host reaches an NLB node of the DNS answer ((n-1)/n cross), the NLB with cross-zone on picks a
    PgBouncer host anywhere ((n-1)/n), PgBouncer reaches the writer RDS placed in one of n
    ((n-1)/n); each crossing GB is billed out and in at $0.01."""
    report = price_plan(plan("phase3", network={"azCount": azs}).to_json(), with_band=False)
    gb = _phase_quantities(3)["db_gb"]  # 2,102.4 GB
    cross = (azs - 1) / azs  # 1/2 for 2 AZs, 2/3 for 3
    nlb = line(report, "pgbouncer-nlb", "inter_az_gb")
    assert nlb.monthly_usd == pytest.approx(gb * 2 * cross * 2 * 0.01, abs=0.01)  # 2 AZ: $42.05, 3 AZ: $56.06
    db = line(report, "db", "inter_az_gb")
    assert db.monthly_usd == pytest.approx(gb * cross * 2 * 0.01, abs=0.01)  # 2 AZ: $21.02, 3 AZ: $28.03
    redis = line(report, "redis", "inter_az_gb")
    assert redis.monthly_usd == pytest.approx(_phase_quantities(3)["cache_gb"] * cross * 2 * 0.01, abs=0.01)
    assert not [i for i in report.items if i.name == "fleet-alb" and i.sku == "inter_az_gb"]  # ALB -> targets: free


def test_cross_az_share_of_placements():
    a, b, c = "us-east-1a", "us-east-1b", "us-east-1c"
    assert cross_az_share(frozenset([a]), frozenset([a])) == 0.0  # same single AZ
    assert cross_az_share(frozenset([a]), frozenset([a, b])) == 0.5  # RDS places the writer in either
    assert cross_az_share(frozenset([a, b, c]), frozenset([a, b, c])) == pytest.approx(2 / 3)
    assert cross_az_share(frozenset([a, b]), frozenset([c])) == 1.0


def test_a_single_nat_gateway_makes_the_other_az_cross():
    """Phase 2 has one NAT gateway (natGateways single) for private hosts in 2 AZs: half the NAT
    traffic (20 GB base + the egress) crosses, billed out and in; phase 4 has one per AZ: none."""
    q = _phase_quantities(2)
    nat_gb = DEFAULTS["nat_gb_base"] + q["nat_egress_gb"]  # 161.74 GB
    report = price_plan(plan("phase2").to_json(), with_band=False)
    assert line(report, "network-nat-0", "inter_az_gb").monthly_usd == pytest.approx(nat_gb * 0.5 * 2 * 0.01, abs=0.01)
    per_az = price_plan(plan("phase4").to_json(), with_band=False)
    assert not [i for i in per_az.items if i.name.startswith("network-nat") and i.sku == "inter_az_gb"]
