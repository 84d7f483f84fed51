"""Forwarding headers through a real nginx on 127.0.0.1 (review aws-phases-1-4 finding 19).

The app host's nginx is rendered from the same data the user data uses
(`ladder.userdata.reverse_proxy_data` with `trusted_proxies`). A fake "ALB" connects from
127.0.0.2 (the trusted range here; the VPC range on AWS) and sends what an ALB sends after
ending TLS; a client connecting from elsewhere forges the same headers. The upstream
(upstream.py /echo) shows what the app would see.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from nginx_harness import HTTP_TIMEOUT, Nginx, Upstream

from ladder import userdata
from ladder.templates import render

HEALTH = "/health"
FAKE_ALB = "127.0.0.2"  # the trusted proxy's address
CLIENT = "198.51.100.23"  # a client on the internet, as the ALB reports it


def echo(port: int, source: str, headers: dict[str, str]) -> dict[str, str]:
    """GET /echo from `source` (a loopback address); the headers the upstream received."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT, source_address=(source, 0))
    try:
        conn.request("GET", "/echo", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200
        return {k.lower(): v for k, v in json.loads(resp.read())["headers"].items()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def behind_alb() -> Iterator[int]:
    """An app host's nginx as in phases 2-5 (trusting the proxies' range), the app behind it."""
    with Upstream("app", health_path=HEALTH) as app:
        conf = render("nginx/reverse_proxy.conf.j2",
                      userdata.reverse_proxy_data(app.port, HEALTH, None, [f"{FAKE_ALB}/32"]))
        with Nginx(conf) as nginx:
            yield nginx.start().port


def test_the_alb_scheme_and_client_address_reach_the_app(behind_alb: int) -> None:
    seen = echo(behind_alb, FAKE_ALB, {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT})
    assert seen["x-forwarded-proto"] == "https"  # TLS ended at the ALB: the app must know
    assert seen["x-real-ip"] == CLIENT and seen["x-forwarded-for"] == CLIENT


def test_a_forged_entry_before_the_albs_is_not_believed(behind_alb: int) -> None:
    """The ALB appends the address it saw; whatever the client wrote before stays untrusted."""
    seen = echo(behind_alb, FAKE_ALB, {"X-Forwarded-Proto": "https", "X-Forwarded-For": f"10.9.9.9, {CLIENT}"})
    assert seen["x-real-ip"] == CLIENT and seen["x-forwarded-for"] == CLIENT


def test_a_direct_client_cannot_claim_an_address_or_https(behind_alb: int) -> None:
    seen = echo(behind_alb, "127.0.0.1", {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT})
    assert seen["x-real-ip"] == "127.0.0.1" and seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_the_alb_without_a_proto_header_gets_the_connection_scheme(behind_alb: int) -> None:
    seen = echo(behind_alb, FAKE_ALB, {"X-Forwarded-For": CLIENT})
    assert seen["x-forwarded-proto"] == "http" and seen["x-real-ip"] == CLIENT


def test_phase_1_trusts_nobody() -> None:
    """The phase-1 VM faces the clients: no address may speak for another."""
    assert userdata.trusted_proxies(1, "10.0.0.0/16") == [] and userdata.trusted_proxies(2, "10.0.0.0/16") == [
        "10.0.0.0/16"]
    with Upstream("app", health_path=HEALTH) as app:
        conf = render("nginx/reverse_proxy.conf.j2",
                      userdata.reverse_proxy_data(app.port, HEALTH, None, userdata.trusted_proxies(1, "10.0.0.0/16")))
        with Nginx(conf) as nginx:
            seen = echo(nginx.start().port, FAKE_ALB, {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT})
    assert seen["x-real-ip"] == FAKE_ALB and seen["x-forwarded-proto"] == "http"


def test_nginx_load_balancer_then_app_host_keeps_the_client_address() -> None:
    """Phase 2 with `loadBalancer: nginx`: the LB faces the clients (trusts nobody), the app
    host trusts the LB. A client's forged X-Forwarded-For dies at the LB; its real address
    reaches the app."""
    with Upstream("app", health_path=HEALTH) as app:
        host_conf = render("nginx/reverse_proxy.conf.j2",
                           userdata.reverse_proxy_data(app.port, HEALTH, None, ["127.0.0.1/32"]))
        with Nginx(host_conf) as host:
            host_port = host.start().port
            lb_conf = render("nginx/load_balancer.conf.j2",
                             userdata.load_balancer_data([f"127.0.0.1:{host_port}"], HEALTH))
            with Nginx(lb_conf) as lb:
                seen = echo(lb.start().port, "127.0.0.3", {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
    assert seen["x-real-ip"] == "127.0.0.3" and seen["x-forwarded-for"] == "127.0.0.3"
    assert seen["x-forwarded-proto"] == "http"
