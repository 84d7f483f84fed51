"""`cdn.apiPath` (issue 17 item 5): the API straight to the load balancer, CloudFront for /static.

With `loadBalancer` the distribution keeps only the S3 origin, the load balancer (phase 6: the
Ingress's) faces the clients over TLS with a REGIONAL web ACL carrying the same rate limit and
managed groups, and the cost moves from CloudFront request fees to load balancer egress. With
`cloudfront` (the default) the stack is today's. Switching a deployed stack goes through an `up`
that serves both ways (ladder/climb.py)."""

from __future__ import annotations

import json

import pytest

from ladder import climb, cost, engine
from ladder.phases import PHASES
from ladder.topology import INTERNET
from tests.unit.plans import ingress, plan

DIRECT = {"cdn": {"apiPath": "loadBalancer"}}
ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
LISTENER = "aws:lb/listener:Listener"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NOTE = "alb.ingress.kubernetes.io"


def _acls(p) -> dict[str, object]:
    return {a.inputs["scope"]: a for a in p.of_type(ACL)}


def _rules(acl) -> dict[str, dict]:
    return {r["name"]: r for r in acl.inputs["rules"]}


def _alb(p):
    [alb] = [lb for lb in p.of_type("aws:lb/loadBalancer:LoadBalancer") if lb.inputs["loadBalancerType"] == "application"]
    return alb


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_distribution_keeps_only_the_static_origin(stack):
    d = plan(stack, **DIRECT).one(DISTRIBUTION)
    origins = d.inputs["origins"]
    assert [o["originId"] for o in origins] == ["static-assets"]
    assert not any(o.get("customOriginConfig") or o.get("customHeaders") for o in origins)  # no app, no verify header
    behaviours = [d.inputs["defaultCacheBehavior"], *d.inputs.get("orderedCacheBehaviors", [])]
    assert {b["targetOriginId"] for b in behaviours} == {"static-assets"}
    assert all(set(b["allowedMethods"]) == {"GET", "HEAD", "OPTIONS"} for b in behaviours)  # nothing writes through it


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_regional_acl_has_the_cdn_acls_rate_limit_and_groups(stack):
    p = plan(stack, cdn={"apiPath": "loadBalancer"}, edge={"rateLimitPerMinute": 240})
    acls = _acls(p)
    assert set(acls) == {"REGIONAL", "CLOUDFRONT"}  # /static keeps its edge ACL
    regional, edge_acl = _rules(acls["REGIONAL"]), _rules(acls["CLOUDFRONT"])
    assert regional == edge_acl  # same rate rule (same limit, window, 429) and the same managed groups
    assert regional["rate-per-ip"]["statement"]["rateBasedStatement"]["limit"] == 240


def test_phase5_alb_is_behind_the_regional_acl():
    p = plan("phase5", **DIRECT)
    regional = _acls(p)["REGIONAL"]
    [assoc] = p.of_type(ASSOCIATION)
    assert (assoc.inputs["resourceArn"], assoc.inputs["webAclArn"]) == (_alb(p).state["arn"], regional.state["arn"])


def test_phase6_ingress_takes_the_regional_acl_and_the_internet():
    p = plan("phase6", **DIRECT)
    notes = p.one(INGRESS).inputs["metadata"]["annotations"]
    assert notes[f"{NOTE}/wafv2-acl-arn"] == _acls(p)["REGIONAL"].state["arn"]
    assert notes[f"{NOTE}/inbound-cidrs"] == INTERNET
    assert f"{NOTE}/security-group-prefix-lists" not in notes and f"{NOTE}/conditions.app" not in notes
    # TLS only: HTTP is answered with a redirect to 443, with the stack's certificate and a TLS 1.2+ policy
    assert json.loads(notes[f"{NOTE}/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert notes[f"{NOTE}/ssl-redirect"] == "443"
    assert notes[f"{NOTE}/certificate-arn"] == p.config.app.certificate_arn
    assert notes[f"{NOTE}/ssl-policy"].startswith("ELBSecurityPolicy-TLS13-")
    attributes = dict(kv.split("=", 1) for kv in notes[f"{NOTE}/listener-attributes.HTTPS-443"].split(","))
    assert attributes == {"routing.http.response.strict_transport_security.header_value": "max-age=31536000",
                          "routing.http.response.x_content_type_options.header_value": "nosniff",
                          "routing.http.response.x_frame_options.header_value": "SAMEORIGIN"}


def test_phase5_alb_admits_the_internet_over_tls_only():
    p = plan("phase5", **DIRECT)
    lb_rules = {(port, src) for tier, port, src in ingress(p) if tier == "lb"}
    assert (443, INTERNET) in lb_rules and (80, INTERNET) in lb_rules
    assert all(src == INTERNET for _, src in lb_rules)  # no CloudFront prefix-list rule: CloudFront never comes here
    listeners = {int(r.inputs["port"]): r.inputs for r in p.of_type(LISTENER)}
    https, http = listeners[443], listeners[80]
    assert https["protocol"] == "HTTPS" and https["certificateArn"] == p.config.app.certificate_arn
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert [a["type"] for a in https["defaultActions"]] == ["forward"]  # direct clients are served
    # the security headers CloudFront's SecurityHeadersPolicy added to API responses, now from the ALB
    assert (https["routingHttpResponseStrictTransportSecurityHeaderValue"], https["routingHttpResponseXContentTypeOptionsHeaderValue"],
            https["routingHttpResponseXFrameOptionsHeaderValue"]) == ("max-age=31536000", "nosniff", "SAMEORIGIN")
    [redirect] = http["defaultActions"]
    assert redirect["type"] == "redirect" and (redirect["redirect"]["protocol"], redirect["redirect"]["port"]) == ("HTTPS", "443")
    assert not p.of_type("aws:lb/listenerRule:ListenerRule")  # no X-Origin-Verify check left to lock clients out
    assert not [r.name for r in p.resources if r.name.startswith("origin-verify")]  # no header secret to keep


def test_outputs_point_the_api_at_the_load_balancer_and_static_at_cloudfront():
    p = plan("phase5", **DIRECT)
    out = engine.public(p.outputs)
    assert out["url"] == f"https://{p.config.cdn.origin_domain}"
    assert out["staticUrl"] == f"https://{out['cdnDomain']}/static"
    assert out[climb.OUT_API_PATH] == "loadBalancer" and out[climb.OUT_ALB_OPEN] is True


def test_static_from_another_host_gets_cors_headers():
    from ladder.aws_facts import CLOUDFRONT_MANAGED_POLICIES as managed
    d = plan("phase5", **DIRECT).one(DISTRIBUTION)
    assert d.inputs["defaultCacheBehavior"]["responseHeadersPolicyId"] == managed["Managed-CORS-and-SecurityHeadersPolicy"]


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_default_is_todays_cloudfront_path(stack):
    default, explicit = plan(stack), plan(stack, cdn={"apiPath": "cloudfront"})
    assert {r.urn: r.inputs for r in default.resources} == {r.urn: r.inputs for r in explicit.resources}
    d = default.one(DISTRIBUTION)
    assert [o["originId"] for o in d.inputs["origins"]] == ["static-assets", "app"]
    assert d.inputs["defaultCacheBehavior"]["targetOriginId"] == "app"
    assert set(_acls(default)) == {"CLOUDFRONT"} and not default.of_type(ASSOCIATION)
    if stack == "phase5":
        lb_rules = {(port, src) for tier, port, src in ingress(default) if tier == "lb"}
        assert INTERNET not in {src for _, src in lb_rules}  # only CloudFront's prefix list
        https = next(r.inputs for r in default.of_type(LISTENER) if int(r.inputs["port"]) == 443)
        assert https["defaultActions"][0]["type"] == "fixed-response"  # no origin header: 403
        assert "routingHttpResponseStrictTransportSecurityHeaderValue" not in https  # CloudFront adds them
    else:
        notes = default.one(INGRESS).inputs["metadata"]["annotations"]
        assert f"{NOTE}/security-group-prefix-lists" in notes and f"{NOTE}/wafv2-acl-arn" not in notes


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_policy_pack_passes_with_the_api_at_the_load_balancer(stack):
    from ladder import policy as offline
    assert offline.mandatory(offline.check(plan(stack, **DIRECT))) == []


# -- cost ---------------------------------------------------------------------------------------

def _quantities(report: cost.CostReport) -> dict[str, float]:
    out: dict[str, float] = {}
    for i in report.items:
        out[i.sku.split(":")[0]] = out.get(i.sku.split(":")[0], 0.0) + i.quantity
    return out


def _usd(report: cost.CostReport, prefix: str) -> float:
    return sum(i.monthly_usd for i in report.items if i.sku.startswith(prefix))


def test_cost_moves_api_traffic_from_cloudfront_to_the_load_balancer():
    """Phase 5 at its target, by hand from usage/defaults.yml: 100,000 peak users x 0.4 = 40,000
    average; API 40,000 x 730 h x 60 x 3 = 5.256e9 requests of 10 KB = 52,560 GB; static 40,000 x
    730 x 1 page x 20 objects = 5.84e8 requests, x 400 KB = 11,680 GB."""
    users = PHASES[5].concurrent_users * 0.4
    api_requests, static_requests = users * 730 * 60 * 3, users * 730 * 20
    api_gb, static_gb = api_requests * 10 / 1e6, users * 730 * 400 / 1e6
    assert (api_requests, static_requests, api_gb, static_gb) == pytest.approx((5.256e9, 5.84e8, 52_560, 11_680))
    via = cost.price_plan(plan("phase5").to_json(), with_band=False)
    direct = cost.price_plan(plan("phase5", **DIRECT).to_json(), with_band=False)
    qv, qd = _quantities(via), _quantities(direct)
    assert qv["cloudfront_https_requests_10k"] == pytest.approx((api_requests + static_requests) / 1e4)
    assert qd["cloudfront_https_requests_10k"] == pytest.approx(static_requests / 1e4)  # the API pays none
    assert qd["cloudfront_gb_out"] == pytest.approx(static_gb)
    # the load balancer's internet egress (NAT gateways' egress to the internet is their own line)
    lb_egress = [sum(i.quantity for i in r.items if i.sku == "data_transfer_out_gb" and i.type != cost.NAT_GATEWAY)
                 for r in (via, direct)]
    assert lb_egress[1] == pytest.approx(api_gb) and lb_egress[0] == 0
    # both web ACLs together inspect each request once: REGIONAL the API, CloudFront's /static
    assert qd["waf_requests_1m"] == pytest.approx(qv["waf_requests_1m"]) == pytest.approx(
        (api_requests + static_requests) / 1e6)
    # the ALB carries the API either way: its LCUs do not fall (bound by processed bytes in this model)
    assert qd["alb_lcu_hour"] >= qv["alb_lcu_hour"] > 0
    assert _usd(direct, "cloudfront_https_requests") < _usd(via, "cloudfront_https_requests") / 5
    assert direct.total < via.total


# -- climb ----------------------------------------------------------------------------------------

def _previous(path: str) -> dict:
    out = engine.public(plan("phase5").outputs)
    return {**out, climb.OUT_API_PATH: path}


def test_switching_either_way_needs_an_up_that_serves_both():
    to_direct = plan("phase5", **DIRECT).config
    found = "\n".join(climb.problems(to_direct, _previous("cloudfront")))
    assert "scaleladder:climb.keepAlbOpen" in found and "allowed now: true" in found
    both = plan("phase5", cdn={"apiPath": "loadBalancer"}, climb={"keepAlbOpen": True}).config
    assert climb.problems(both, _previous("cloudfront")) == []
    assert climb.problems(to_direct, _previous("both")) == []
    back = plan("phase5").config
    assert "scaleladder:climb.keepAlbOpen" in "\n".join(climb.problems(back, _previous("loadBalancer")))
    assert climb.problems(back, _previous("both")) == []
    # a stack deployed before the apiPath output existed had CloudFront carry the API
    legacy = {k: v for k, v in _previous("cloudfront").items() if k != climb.OUT_API_PATH}
    assert "scaleladder:climb.keepAlbOpen" in "\n".join(climb.problems(to_direct, legacy))


def test_phase6_refuses_the_switch():
    found = "\n".join(climb.problems(plan("phase6", **DIRECT).config, {**_previous("cloudfront"), "phase": 6}))
    assert "scaleladder:cdn.apiPath" in found and "allowed now: cloudfront" in found


def test_both_paths_serve_during_the_switch():
    """The intermediate `up`: CloudFront still carries the API, the ALB also takes clients behind its web ACL."""
    p = plan("phase5", cdn={"apiPath": "loadBalancer"}, climb={"keepAlbOpen": True})
    d = p.one(DISTRIBUTION)
    assert d.inputs["defaultCacheBehavior"]["targetOriginId"] == "app"
    assert set(_acls(p)) == {"REGIONAL", "CLOUDFRONT"}
    assert (443, INTERNET) in {(port, src) for tier, port, src in ingress(p) if tier == "lb"}
    assert engine.public(p.outputs)[climb.OUT_API_PATH] == "both"
    # no plain HTTP to the app in that `up`: its clients are on HTTPS (only the 4 -> 5 climb forwards HTTP)
    http = next(r.inputs for r in p.of_type(LISTENER) if int(r.inputs["port"]) == 80)
    assert [a["type"] for a in http["defaultActions"]] == ["redirect"]
    climbing = plan("phase5", climb={"keepAlbOpen": True})
    http = next(r.inputs for r in climbing.of_type(LISTENER) if int(r.inputs["port"]) == 80)
    assert [a["type"] for a in http["defaultActions"]] == ["forward"]


def test_phase5_tier_kept_beside_eks_keeps_serving_its_direct_clients():
    """5 -> 6 with climb.keepEc2Tier: the phase-5 ALB (whose DNS name the clients still use) stays open
    behind the REGIONAL web ACL, which the Ingress's ALB shares; nothing requires CloudFront's header."""
    p = plan("phase6", cdn={"apiPath": "loadBalancer"}, climb={"keepEc2Tier": True})
    regional = _acls(p)["REGIONAL"]
    [assoc] = p.of_type(ASSOCIATION)
    assert (assoc.inputs["resourceArn"], assoc.inputs["webAclArn"]) == (_alb(p).state["arn"], regional.state["arn"])
    assert (443, INTERNET) in {(port, src) for tier, port, src in ingress(p) if tier == "lb"}
    assert not p.of_type("aws:lb/listenerRule:ListenerRule")
    assert p.one(INGRESS).inputs["metadata"]["annotations"][f"{NOTE}/wafv2-acl-arn"] == regional.state["arn"]


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_policy_pack_catches_the_forgotten_web_acl(stack):
    """policy rule public-alb-behind-waf: the same plan without the ALB's web ACL (phase 5: its
    association, phase 6: the Ingress's wafv2-acl-arn annotation) fails it."""
    import dataclasses

    from ladder import policy as offline
    from policy import rules
    p = plan(stack, **DIRECT)
    rule = rules.by_name("public-alb-behind-waf")
    assert rules.apply(rule, offline.views(p)) == []
    if stack == "phase5":
        resources = [r for r in p.resources if r.type != ASSOCIATION]
    else:
        def strip(r):
            if r.type != INGRESS:
                return r
            notes = {k: v for k, v in r.inputs["metadata"]["annotations"].items() if k != f"{NOTE}/wafv2-acl-arn"}
            return dataclasses.replace(r, inputs={**r.inputs, "metadata": {**r.inputs["metadata"], "annotations": notes}})
        resources = [strip(r) for r in p.resources]
    assert rules.apply(rule, offline.views(dataclasses.replace(p, resources=resources)))


def _in_stack(urn: str) -> str:
    """A URN without its stack name (urn:pulumi:<stack>::<project>::...): the same resource in two stacks' plans."""
    return urn.split("::", 1)[1]


def test_phase5_albs_web_acl_association_keeps_its_urn_beside_eks_and_back():
    """review-cost-aws finding 1: a renamed association is created, then the old one deleted, and that
    DisassociateWebACL (resource ARN only) strips the web ACL off the ALB clients still use. 5 -> 6 goes
    phase 5 -> phase 6 with keepEc2Tier; 6 -> 5 goes the other way between the same two plans."""
    five = plan("phase5", **DIRECT)
    beside = plan("phase6", cdn={"apiPath": "loadBalancer"}, climb={"keepEc2Tier": True})
    [a5], [a6] = five.of_type(ASSOCIATION), beside.of_type(ASSOCIATION)
    assert _in_stack(a5.urn) == _in_stack(a6.urn)
    assert a6.inputs["resourceArn"] == _alb(beside).state["arn"]
    assert _in_stack(_acls(five)["REGIONAL"].urn) == _in_stack(_acls(beside)["REGIONAL"].urn)


def _rate_scope(acl) -> dict:
    return _rules(acl)["rate-per-ip"]["statement"]["rateBasedStatement"]["scopeDownStatement"]


def _uncounted_header(scope: dict) -> tuple[str, str, object] | None:
    """(header, match, value) the rate rule leaves uncounted (a `not` of a header byte match), or None."""
    for part in scope.get("andStatement", {}).get("statements", []):
        match = part.get("notStatement", {}).get("statement", {}).get("byteMatchStatement")
        if match and "singleHeader" in match["fieldToMatch"]:
            return match["fieldToMatch"]["singleHeader"]["name"], match["positionalConstraint"], match["searchString"]
    return None


@pytest.mark.parametrize("api_path", ["loadBalancer", "cloudfront"])
def test_regional_rate_rule_does_not_count_cloudfronts_requests_while_it_carries_the_api(api_path):
    """review-cost-aws finding 2: in the switch's both-state (and the 4 -> 5 climb's keepAlbOpen `up`)
    CloudFront still sends the API to the ALB, from its origin-facing addresses: a per-IP count there
    blocks CloudFront. Requests with the exact X-Origin-Verify secret CloudFront sends are left out."""
    p = plan("phase5", cdn={"apiPath": api_path}, climb={"keepAlbOpen": True})
    [origin] = [o for o in p.one(DISTRIBUTION).inputs["origins"] if o.get("customHeaders")]
    [sent] = [h["value"] for h in origin["customHeaders"] if h["name"] == "X-Origin-Verify"]
    acls = _acls(p)
    assert _uncounted_header(_rate_scope(acls["REGIONAL"])) == ("x-origin-verify", "EXACTLY", sent)
    # still not /static either, and CloudFront's own web ACL counts every client
    assert any(s.get("notStatement", {}).get("statement", {}).get("byteMatchStatement", {}).get("searchString")
               == "/static/" for s in _rate_scope(acls["REGIONAL"])["andStatement"]["statements"])
    assert _uncounted_header(_rate_scope(acls["CLOUDFRONT"])) is None


@pytest.mark.parametrize("stack", ["phase4", "phase5"])
def test_regional_rate_rule_counts_everyone_where_cloudfront_does_not_carry_the_api(stack):
    p = plan(stack, **(DIRECT if stack == "phase5" else {}))
    assert _uncounted_header(_rate_scope(_acls(p)["REGIONAL"])) is None


def test_phase6_regional_alarm_publishes_to_the_stacks_confirmed_topic():
    """review-cost-aws finding 7: no new SNS topic (a new email subscription waits for a click) when
    the Ingress's ALB starts facing clients; the alarm goes where phase 5's did."""
    six = plan("phase6", **DIRECT)
    assert not [t for t in six.of_type("aws:sns/topic:Topic") if "edge-alb" in t.name]
    [stack_topic] = [t for t in six.of_type("aws:sns/topic:Topic") if t.name == "alarms-topic"]
    [alarm] = [a for a in six.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name == "edge-alb-blocked"]
    assert alarm.inputs["alarmActions"] == [stack_topic.state["arn"]]
    five = plan("phase5", **DIRECT)
    [alarm5] = [a for a in five.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name == "edge-alb-blocked"]
    assert _in_stack(alarm5.urn) == _in_stack(alarm.urn)


@pytest.mark.parametrize("value", [None, "0123abcd-waf-classic-id", "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/1"])
def test_policy_refuses_an_ingress_without_a_regional_wafv2_acl(value):
    """review-cost-aws finding 6: WAF Classic's waf-acl-id (end of support 30 September 2025) and a
    CloudFront (global) web ACL protect nothing on the Ingress's ALB; only a REGIONAL wafv2 ARN counts."""
    import dataclasses

    from ladder import policy as offline
    from policy import rules
    p = plan("phase6", **DIRECT)
    rule = rules.by_name("public-alb-behind-waf")
    arn = p.one(INGRESS).inputs["metadata"]["annotations"][f"{NOTE}/wafv2-acl-arn"]
    assert ":regional/webacl/" in arn and rules.apply(rule, offline.views(p)) == []

    def swap(r):
        if r.type != INGRESS:
            return r
        notes = {k: v for k, v in r.inputs["metadata"]["annotations"].items() if k != f"{NOTE}/wafv2-acl-arn"}
        if value is not None and value.startswith("arn:"):
            notes[f"{NOTE}/wafv2-acl-arn"] = value
        elif value is not None:
            notes[f"{NOTE}/waf-acl-id"] = value
        return dataclasses.replace(r, inputs={**r.inputs, "metadata": {**r.inputs["metadata"], "annotations": notes}})
    assert rules.apply(rule, offline.views(dataclasses.replace(p, resources=[swap(r) for r in p.resources])))


def test_cloudfront_bills_the_api_requests_it_forwards_to_the_origin(tmp_path):
    """review-cost-aws finding 8: "Regional Data Transfer Out to Origin", $0.020/GB (US; Infracost golden
    1,234 GB = $24.68), on the API requests' bytes, only when the API rides CloudFront. By hand: phase 5's
    5.256e9 API requests (test above) x 1 KB (usage/defaults.yml kb_per_api_request_in) = 5,256 GB x
    $0.020 = $105.12; with 3 KB requests 15,768 GB = $315.36. The load-balancer path (and /static, S3)
    bills none."""
    via = cost.price_plan(plan("phase5").to_json(), with_band=False)
    [line] = [i for i in via.items if i.sku == "cloudfront_origin_gb"]
    assert (line.quantity, line.unit_price_usd, line.monthly_usd) == pytest.approx((5_256, 0.020, 105.12))
    direct = cost.price_plan(plan("phase5", **DIRECT).to_json(), with_band=False)
    assert not [i for i in direct.items if i.sku == "cloudfront_origin_gb"]
    usage = tmp_path / "usage.yml"
    usage.write_text("assumptions:\n  kb_per_api_request_in: 3\n")
    heavier = cost.price_plan(plan("phase5").to_json(), usage_file=usage, with_band=False)
    assert _usd(heavier, "cloudfront_origin_gb") == pytest.approx(315.36)


def test_phase5_app_hosts_send_referrer_policy_on_the_load_balancer_path():
    """review-cost-aws finding 10: the ALB listener has no Referrer-Policy attribute, so with
    `loadBalancer` the app hosts' nginx is what keeps CloudFront's SecurityHeadersPolicy value."""
    from tests.unit.plans import user_data_texts
    texts = user_data_texts(plan("phase5", **DIRECT))
    assert 'add_header Referrer-Policy "strict-origin-when-cross-origin" always;' in texts["fleet-app"]
