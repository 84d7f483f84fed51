"""The rendered nginx configs, run by a real nginx on 127.0.0.1 in front of upstream.py servers.

Reverse proxy (phase 1): the app behind it gets the request with forwarding headers over a
reused connection; the health path reaches the app unlogged; clients get security
headers, gzip and no version banner. Load balancer (phase 2, `loadBalancer: nginx`):
traffic spreads over every instance, and SIGKILLing one instance under load loses no
request. Nothing here asserts a timing. Without nginx the server tests fail (they say to
run the project setup) unless SCALELADDER_SKIP_INTEGRATION=1.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import jinja2
import jinja2.meta
import pytest
from nginx_harness import HTTP_TIMEOUT, Nginx, Upstream, request

from ladder.templates import ROOT, render

REVERSE_PROXY = "nginx/reverse_proxy.conf.j2"
LOAD_BALANCER = "nginx/load_balancer.conf.j2"
COMMON = "nginx/_common.conf.j2"
pytestmark = pytest.mark.integration

HEALTH = "/healthz"  # not the default: proves the path comes from the data
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "frame-ancestors 'self'",
}


def reverse_proxy_data(**over) -> dict:
    data = {"listen_port": 80, "upstream_host": "127.0.0.1", "upstream_port": 3000,
            "health_path": "/health", "client_max_body_size_mb": 10, "trusted_proxies": [],
            "rate_limit": None}  # ladder/edge.py; tests/integration/test_rate_limit.py sets it
    return {**data, **over}


def load_balancer_data(**over) -> dict:
    data = {"listen_port": 80, "upstreams": ["10.0.10.11:3000", "10.0.11.12:3000"],
            "health_path": "/health", "max_fails": 3, "fail_timeout_s": 30, "keepalive": 32,
            "client_max_body_size_mb": 10, "trusted_proxies": [], "rate_limit": None}
    return {**data, **over}


def assert_security_headers(resp) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get_all(name) == [value], (name, resp.headers.get_all(name))
    assert resp.headers["Server"] == "nginx"  # server_tokens off: no version
    assert b"nginx/" not in resp.body


# --- the templates as files -------------------------------------------------------------

@pytest.mark.parametrize("template, data", [(REVERSE_PROXY, reverse_proxy_data()),
                                            (LOAD_BALANCER, load_balancer_data())],
                         ids=["reverse_proxy", "load_balancer"])
def test_template_reads_exactly_its_data_keys(template: str, data: dict) -> None:
    """The dict the Pulumi components pass is the whole contract: every key is used, and
    the template (with its include) needs nothing else."""
    env = jinja2.Environment()
    used = set()
    for path in (template, COMMON, "nginx/_forwarded.conf.j2"):
        used |= jinja2.meta.find_undeclared_variables(env.parse((ROOT / path).read_text()))
    assert used == set(data)


@pytest.mark.parametrize("template, data, lines", [
    (REVERSE_PROXY,
     reverse_proxy_data(listen_port=8081, upstream_host="127.0.0.2", upstream_port=3100,
                        health_path="/ready", client_max_body_size_mb=4),
     ['listen 8081 default_server;', 'server "127.0.0.2:3100";', 'location = "/ready" {',
      'client_max_body_size 4m;']),
    (LOAD_BALANCER,
     load_balancer_data(listen_port=8082, upstreams=["10.0.10.11:3000", "10.0.11.12:3001", "10.0.12.13:3002"],
                        health_path="/ready", max_fails=5, fail_timeout_s=7, keepalive=9,
                        client_max_body_size_mb=4),
     ['listen 8082 default_server;', 'server "10.0.10.11:3000" max_fails=5 fail_timeout=7s;',
      'server "10.0.11.12:3001" max_fails=5 fail_timeout=7s;',
      'server "10.0.12.13:3002" max_fails=5 fail_timeout=7s;', 'keepalive 9;',
      'proxy_next_upstream_tries 3;',  # each instance tried at most once
      'location = "/ready" {', 'client_max_body_size 4m;']),
], ids=["reverse_proxy", "load_balancer"])
def test_directives_take_their_values_from_data(template: str, data: dict, lines: list[str]) -> None:
    """Non-default values land in their directives (the runtime tests pick their own port)."""
    rendered = {line.strip() for line in render(template, data).splitlines()}
    assert [line for line in lines if line not in rendered] == []


@pytest.mark.parametrize("distro", [False, True], ids=["minimal-nginx.conf", "distro-nginx.conf"])
@pytest.mark.parametrize("template, data", [(REVERSE_PROXY, reverse_proxy_data()),
                                            (LOAD_BALANCER, load_balancer_data())],
                         ids=["reverse_proxy", "load_balancer"])
def test_rendered_config_passes_nginx_t(template: str, data: dict, distro: bool) -> None:
    """`nginx -t` accepts the config without a warning, also inside the distro's own
    nginx.conf (which already sets http-level directives such as `gzip on`)."""
    with Nginx(render(template, data), distro=distro) as nginx:
        result = nginx.test()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


# --- reverse proxy ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def reverse_proxy() -> Iterator[tuple[int, Nginx]]:
    """upstream.py as the app, behind the rendered reverse proxy (1 MB body limit)."""
    with Upstream("app", health_path=HEALTH) as app:
        conf = render(REVERSE_PROXY, reverse_proxy_data(
            upstream_port=app.port, health_path=HEALTH, client_max_body_size_mb=1))
        with Nginx(conf) as nginx:
            yield nginx.start().port, nginx


def test_request_reaches_app_with_forwarding_headers(reverse_proxy) -> None:
    port, _ = reverse_proxy
    resp = request(port, "/echo", headers={"Host": "api.example.test"})
    assert resp.status == 200
    seen = {k.lower(): v for k, v in resp.json()["headers"].items()}
    assert resp.json()["id"] == "app"
    assert seen["host"] == "api.example.test"
    assert seen["x-forwarded-host"] == "api.example.test"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert "connection" not in seen  # HTTP/1.1 keep-alive to the app, not `close`


def test_app_connections_are_reused(reverse_proxy) -> None:
    """Sequential requests (each on a new client connection) reach the app over one
    upstream connection: the keepalive pool works."""
    port, _ = reverse_proxy
    peers = {request(port, "/").json()["peer"] for _ in range(5)}
    assert len(peers) == 1, peers


def test_health_path_reaches_app_and_is_not_logged(reverse_proxy) -> None:
    port, nginx = reverse_proxy
    assert request(port, "/?marker=logged").status == 200
    resp = request(port, HEALTH)
    assert resp.status == 200
    assert (resp.json()["id"], resp.json()["path"]) == ("app", HEALTH)
    assert "marker=logged" in nginx.access_log
    assert HEALTH not in nginx.access_log


def test_security_headers_replace_the_apps(reverse_proxy) -> None:
    """/leaky sends X-Powered-By and a permissive X-Frame-Options: the client sees only
    nginx's headers, once each, and no version."""
    port, _ = reverse_proxy
    resp = request(port, "/leaky")
    assert resp.status == 200
    assert_security_headers(resp)
    assert "X-Powered-By" not in resp.headers
    assert_security_headers(request(port, "/missing"))  # on error statuses too (`always`)


def test_large_json_is_gzipped_small_is_not(reverse_proxy) -> None:
    port, _ = reverse_proxy
    plain = request(port, "/large")
    zipped = request(port, "/large", headers={"Accept-Encoding": "gzip"})
    assert plain.headers.get("Content-Encoding") is None
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert json.loads(gzip.decompress(zipped.body)) == plain.json()
    assert len(zipped.body) < len(plain.body) // 5
    small = request(port, "/", headers={"Accept-Encoding": "gzip"})  # under gzip_min_length
    assert small.headers.get("Content-Encoding") is None


def test_body_size_limit_from_data(reverse_proxy) -> None:
    port, _ = reverse_proxy
    ok = request(port, "/", method="POST", body=b"x" * 500_000)
    assert ok.status == 200 and ok.json()["received"] == 500_000
    too_big = request(port, "/", method="POST", body=b"x" * 1_500_000)
    assert too_big.status == 413
    assert_security_headers(too_big)


# --- load balancer ----------------------------------------------------------------------

@contextmanager
def load_balancer(ids: list[str]) -> Iterator[tuple[int, Nginx, list[Upstream]]]:
    """One upstream.py per id behind the rendered load balancer (the data's defaults)."""
    with ExitStack() as stack:
        upstreams = [stack.enter_context(Upstream(i, health_path=HEALTH)) for i in ids]
        conf = render(LOAD_BALANCER, load_balancer_data(
            upstreams=[u.address for u in upstreams], health_path=HEALTH))
        nginx = stack.enter_context(Nginx(conf)).start()
        yield nginx.port, nginx, upstreams


def test_requests_spread_over_every_instance() -> None:
    with load_balancer(["a", "b", "c"]) as (port, _, _):
        ids = [request(port, "/").json()["id"] for _ in range(30)]
    assert set(ids) == {"a", "b", "c"}


def test_health_answers_from_nginx_even_with_every_instance_down() -> None:
    """The LB's health says whether the LB works; app outages show as 502 elsewhere."""
    with load_balancer(["a", "b"]) as (port, nginx, upstreams):
        for upstream in upstreams:
            upstream.kill()
        health = request(port, HEALTH)
        assert health.status == 200 and health.json() == {"status": "ok"}
        assert_security_headers(health)
        down = request(port, "/")
        assert down.status == 502
        assert_security_headers(down)
        assert HEALTH not in nginx.access_log


TOTAL, KILL_AFTER, CLIENTS = 6000, 2000, 8


def test_sigkill_one_instance_under_load_loses_no_request() -> None:
    """8 keep-alive clients send 6,000 GETs; once 2,000 have completed, instance `b` is
    SIGKILLed (its in-flight requests die with it). nginx retries those on another
    instance and stops picking `b`: every one of the 6,000 answers is a 200."""
    with load_balancer(["a", "b", "c"]) as (port, nginx, upstreams):
        victim = upstreams[1]
        lock, killed = threading.Lock(), threading.Event()
        completed = 0

        def client(count: int) -> list[tuple[object, str | None, bool]]:
            nonlocal completed
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
            results = []
            for _ in range(count):
                started_after_kill = killed.is_set()
                try:
                    conn.request("GET", "/")
                    resp = conn.getresponse()
                    body = resp.read()
                    served_by = json.loads(body)["id"] if resp.status == 200 else None
                    results.append((resp.status, served_by, started_after_kill))
                except (OSError, http.client.HTTPException, ValueError) as err:
                    results.append((repr(err), None, started_after_kill))
                    conn.close()
                with lock:
                    completed += 1
                    kill_now = completed == KILL_AFTER
                if kill_now:  # the other clients keep going meanwhile
                    victim.kill()
                    killed.set()
            conn.close()
            return results

        with ThreadPoolExecutor(CLIENTS) as pool:
            batches = list(pool.map(client, [TOTAL // CLIENTS] * CLIENTS))
        nginx_saw_failure = victim.address in nginx.error_log

    results = [r for batch in batches for r in batch]
    failed = [r for r in results if r[0] != 200]
    print(f"\nkill test: {len(results)} requests, {len(failed)} failed, "
          f"served by {sorted({r[1] for r in results if r[1]})}")
    assert killed.is_set() and len(results) == TOTAL
    assert failed == []
    assert victim.id in {served for _, served, after in results if not after}
    assert victim.id not in {served for _, served, after in results if after}
    assert nginx_saw_failure  # nginx did hit the dead instance, and routed around it
