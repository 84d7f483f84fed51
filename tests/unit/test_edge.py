"""Rate limiting at the edge (ladder/edge.py, components/waf.py): the one enforcer each phase
gets sits where the clients arrive, with the configured limit, and nowhere it would throttle
everyone at once. Bad `edge.*` values: tests/unit/invalid_configs.yaml."""

from __future__ import annotations

import re

import pytest

from ladder import aws_facts, edge, engine
from tests.unit.plans import plan, stack_values, user_data_texts

ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LIMIT_REQ = re.compile(r"limit_req_zone \$binary_remote_addr zone=scaleladder_per_ip:\d+m rate=(\d+)r/m;")


def _acl(p, scope: str | None = None):
    acls = [a for a in p.of_type(ACL) if scope is None or a.inputs["scope"] == scope]
    assert len(acls) <= 1, [a.name for a in acls]
    return acls[0] if acls else None


def _rate_rule(acl) -> dict:
    [rule] = [r for r in acl.inputs["rules"] if r["name"] == edge.RATE_RULE]
    return rule


def _nginx_limits(p) -> dict[str, int | None]:
    """host name -> the rate in its rendered nginx config (None: no limit_req)."""
    out = {}
    for name, text in user_data_texts(p).items():
        if "scaleladder_app" not in text:
            continue  # a host without nginx (workers, PgBouncer)
        m = LIMIT_REQ.search(text)
        out[name] = int(m.group(1)) if m else None
    return out


@pytest.mark.parametrize("stack", ["phase2", "phase3", "phase4"])
def test_alb_phases_put_the_rate_limited_web_acl_on_the_alb(stack):
    p = plan(stack, edge={"rateLimitPerMinute": 240})
    acl = _acl(p)
    assert acl is not None and acl.inputs["scope"] == "REGIONAL"
    rule = _rate_rule(acl)["statement"]["rateBasedStatement"]
    assert (rule["limit"], rule["evaluationWindowSec"], rule["aggregateKeyType"]) == (240, 60, "IP")
    assert _rate_rule(acl)["action"]["block"]["customResponse"]["responseCode"] == 429
    [alb] = [lb for lb in p.of_type("aws:lb/loadBalancer:LoadBalancer") if lb.inputs["loadBalancerType"] == "application"]
    assoc = p.one(ASSOCIATION)
    assert assoc.inputs["resourceArn"] == alb.state["arn"] and assoc.inputs["webAclArn"] == acl.state["arn"]
    # behind the ALB nginx sees the ALB's address: a per-IP limit there would throttle every client together
    assert set(_nginx_limits(p).values()) == {None}


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_cdn_phases_filter_at_cloudfront_from_us_east_1(stack):
    p = plan(stack)
    acl = _acl(p)
    assert acl is not None and acl.inputs["scope"] == "CLOUDFRONT"
    [provider] = [r for r in p.of_type("pulumi:providers:aws") if (acl.options.get("provider") or "").startswith(r.urn)]
    assert provider.inputs["region"] == "us-east-1", acl.options
    assert p.one("aws:cloudfront/distribution:Distribution").inputs["webAclId"] == acl.state["arn"]
    assert not p.of_type(ASSOCIATION)  # one inspection per request: the origin only takes CloudFront
    assert _rate_rule(acl)["statement"]["rateBasedStatement"]["limit"] == aws_facts.EDGE_RATE_LIMIT_DEFAULT
    # CloudFront alarms live in us-east-1, so does their topic
    alarm = p.one("aws:cloudwatch/metricAlarm:MetricAlarm", "edge-cdn-blocked")
    assert alarm.options["provider"] == acl.options["provider"]


def test_static_assets_are_never_counted():
    acl = _acl(plan("phase5"))
    scope = _rate_rule(acl)["statement"]["rateBasedStatement"]["scopeDownStatement"]["notStatement"]["statement"]
    match = scope["byteMatchStatement"]
    assert (match["positionalConstraint"], match["searchString"]) == ("STARTS_WITH", edge.UNLIMITED_PREFIX)
    assert "uriPath" in match["fieldToMatch"]


def test_managed_rule_groups_follow_config_and_keep_large_bodies():
    acl = _acl(plan("phase3", edge={"managedRuleGroups": ["AWSManagedRulesCommonRuleSet"]}))
    groups = [r for r in acl.inputs["rules"] if "managedRuleGroupStatement" in r["statement"]]
    assert [g["statement"]["managedRuleGroupStatement"]["name"] for g in groups] == ["AWSManagedRulesCommonRuleSet"]
    overrides = groups[0]["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
    assert [(o["name"], list(o["actionToUse"])) for o in overrides] == [("SizeRestrictions_BODY", ["count"])]
    assert all("none" in g["overrideAction"] for g in groups)  # the groups block, they are not merely counted


def test_hosts_facing_clients_limit_in_nginx():
    p1 = plan("phase1", edge={"rateLimitPerMinute": 90})
    assert _acl(p1) is None
    assert set(_nginx_limits(p1).values()) == {90}
    p2 = plan("phase2", loadBalancer="nginx")
    limits = _nginx_limits(p2)
    assert _acl(p2) is None
    lb = [name for name in limits if "nginx-lb" in name]
    assert lb and all(limits[n] == aws_facts.EDGE_RATE_LIMIT_DEFAULT for n in lb)
    assert all(limits[n] is None for n in limits if n not in lb)  # the app hosts sit behind the LB


def test_phase5_while_the_alb_stays_open_filters_its_direct_clients_too():
    """climb.keepAlbOpen (the first phase-5 up) lets clients whose DNS still points at the ALB in;
    CloudFront's web ACL never sees them, so the ALB keeps its own."""
    p = plan("phase5", climb={"keepAlbOpen": True})
    regional, cdn = _acl(p, "REGIONAL"), _acl(p, "CLOUDFRONT")
    assert regional is not None and cdn is not None and regional.inputs["name"] != cdn.inputs["name"]
    [alb] = [lb for lb in p.of_type("aws:lb/loadBalancer:LoadBalancer") if lb.inputs["loadBalancerType"] == "application"]
    assoc = p.one(ASSOCIATION)
    assert (assoc.inputs["resourceArn"], assoc.inputs["webAclArn"]) == (alb.state["arn"], regional.state["arn"])


def test_the_us_east_1_provider_carries_the_stacks_aws_config():
    """An explicit provider reads none of `aws:*`: without them it could use other credentials or
    account, and leave its resources without the stack's default tags."""
    values = stack_values("phase5")
    values.update({"aws:profile": "deployer", "aws:allowedAccountIds": ["123456789012"],
                   "aws:defaultTags": {"tags": {"team": "platform"}}})
    p = engine.run("phase5", values=values)
    [east] = [r for r in p.of_type("pulumi:providers:aws") if r.inputs.get("region") == "us-east-1"]
    assert east.inputs["profile"] == "deployer"
    assert "123456789012" in str(east.inputs["allowedAccountIds"]) and "platform" in str(east.inputs["defaultTags"])
