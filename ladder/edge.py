"""Rate limiting at the edge: one rule, enforced wherever requests enter the stack.

The rule (`edge.*` config): each client IP may send `edge.rateLimitPerMinute` requests a
minute to everything except `/static/` and the health check; more get HTTP 429. What enforces
it depends on what faces the clients:

| phase | clients reach | enforcer |
|---|---|---|
| 1 | nginx on the VM (Elastic IP) | nginx `limit_req` (AWS WAF cannot sit in front of an EC2 address) |
| 2-4, `loadBalancer: alb` (the only choice from phase 3) | the ALB | AWS WAF web ACL (REGIONAL) associated with the ALB |
| 2, `loadBalancer: nginx` | the nginx load balancer host | nginx `limit_req` |
| 5-6 | CloudFront | AWS WAF web ACL (CLOUDFRONT scope, created in us-east-1) on the distribution |
| 5, first `up` with `climb.keepAlbOpen` | CloudFront, and the ALB for clients whose DNS still points there | both web ACLs |
| 5-6, `cdn.apiPath: loadBalancer` | the ALB for the API (phase 6: the Ingress's), CloudFront for `/static` | REGIONAL web ACL on the ALB (phase 6: `alb.ingress.kubernetes.io/wafv2-acl-arn`), CLOUDFRONT web ACL on the distribution |

Why not a second web ACL on the origin load balancer in phases 5-6 (the phase-6 Ingress
could take one through `alb.ingress.kubernetes.io/wafv2-acl-arn`): behind CloudFront the ALB
sees CloudFront's addresses, so a per-IP rule there would have to trust `X-Forwarded-For`,
whose first address the client writes; and every request would be inspected and billed twice
($0.60 per million each time). The origin accepts CloudFront only (origin-facing prefix list),
so the CloudFront web ACL sees every request that reaches the app.

WAF counts per client address over a 60 s window (the smallest the provider accepts:
`ladder.aws_facts.WAF_EVALUATION_WINDOWS`), so the limit reads as requests per minute in both
enforcers. nginx lets `edge.burst` requests over the rate through at once (a page load's
parallel requests) and then answers 429; WAF has no burst: it blocks an address once its
count for the window passes the limit, until it falls back under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import StackConfig

Enforcer = Literal["nginx-host", "nginx-lb", "waf-alb", "waf-cloudfront"]
UNLIMITED_PREFIX = "/static/"
"""Static assets are never rate limited (a page load fetches dozens); CloudFront serves them from S3 in phase 5+."""
RATE_RULE = "rate-per-ip"
"""Name (and CloudWatch `Rule` dimension) of the web ACL's rate-based rule."""
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimit:
    per_minute: int
    burst: int

    def template_data(self) -> dict[str, int]:
        """What nginx/*.conf.j2 read as `rate_limit` (plain values: Ansible renders them too)."""
        return {"per_minute": self.per_minute, "burst": self.burst}


def enforcer(cfg: StackConfig) -> Enforcer:
    """Who rate-limits the API's clients (with `cdn.apiPath: loadBalancer` the API enters at the ALB)."""
    if cfg.phase >= 5:
        return "waf-alb" if cfg.api_direct else "waf-cloudfront"
    if cfg.phase == 1:
        return "nginx-host"
    return "waf-alb" if cfg.load_balancer == "alb" else "nginx-lb"


def alb_faces_clients(cfg: StackConfig) -> bool:
    """An ALB that takes client traffic directly gets the REGIONAL web ACL: phases 2-4 with an
    ALB, phases 5-6 with `cdn.apiPath: loadBalancer` (phase 6: the Ingress's ALB), and phase 5's
    first `up` while `climb.keepAlbOpen` still lets in the clients whose DNS points at the ALB
    (ladder/climb.py). CloudFront's web ACL covers only what enters through it."""
    return enforcer(cfg) == "waf-alb" or (cfg.phase == 5 and cfg.climb.keep_alb_open)


def api_via_cloudfront(cfg: StackConfig) -> bool:
    """The distribution carries the API (an app origin as its default behaviour): phases 5-6 with
    `cdn.apiPath: cloudfront`, and, while `climb.keepAlbOpen` switches the path either way, with
    `loadBalancer` too (both paths serve while DNS moves)."""
    return cfg.phase >= 5 and (not cfg.api_direct or cfg.climb.keep_alb_open)


def origin_verified(cfg: StackConfig) -> bool:
    """The load balancer forwards only requests carrying CloudFront's X-Origin-Verify header (and
    admits only CloudFront's prefix list): phases 5-6 whenever no client reaches it directly."""
    return cfg.phase >= 5 and not alb_faces_clients(cfg)


def api_path_state(cfg: StackConfig) -> str:
    """What the stack output `apiPath` records for the next `up` (ladder.climb): `cloudfront`,
    `loadBalancer`, or `both` while the switch keeps both paths serving."""
    if api_via_cloudfront(cfg) and alb_faces_clients(cfg):
        return "both"
    return "cloudfront" if api_via_cloudfront(cfg) else "loadBalancer"


def rate_limit(cfg: StackConfig) -> RateLimit:
    return RateLimit(cfg.edge.rate_limit_per_minute, cfg.edge.burst)


def nginx_rate_limit(cfg: StackConfig, tier: Literal["host", "lb"]) -> dict[str, int] | None:
    """`rate_limit` template data for the nginx of `tier`, or None where that nginx does not face
    clients (behind an ALB, the client address nginx sees is the ALB's: limiting it would
    throttle everyone at once)."""
    wanted = {"host": "nginx-host", "lb": "nginx-lb"}[tier]
    return rate_limit(cfg).template_data() if enforcer(cfg) == wanted else None
