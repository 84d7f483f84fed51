"""The per-client rate limit of ladder/edge.py, as nginx enforces it where nginx faces the
clients (the phase-1 VM's reverse proxy, the nginx load balancer), on a real nginx.

Under load from several client addresses at once (127.0.0.2-127.0.0.7: Linux's loopback
answers the whole 127/8), a client sending faster than the limit gets 429 once its burst is
spent, while clients under the limit are all served, and /static/ stays unlimited. The test
counts statuses; it asserts no timing (the limit itself is a rate, checked with slack).
"""

from __future__ import annotations

import http.client
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from nginx_harness import HTTP_TIMEOUT, Nginx, Upstream
from test_nginx import LOAD_BALANCER, REVERSE_PROXY, load_balancer_data, reverse_proxy_data

from ladder.edge import RateLimit
from ladder.templates import render

pytestmark = pytest.mark.integration

LIMIT = RateLimit(per_minute=120, burst=4)  # 2 requests a second per client address
AGGRESSOR = "127.0.0.2"
POLITE = [f"127.0.0.{n}" for n in range(3, 8)]
POLITE_REQUESTS, POLITE_GAP_S = 6, 1.0  # 1 request a second: half the limit


def statuses(port: int, source: str, paths: list[str], gap_s: float = 0.0) -> list[int]:
    """Requests over one keep-alive connection from `source`; the status of each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT, source_address=(source, 0))
    out = []
    try:
        for path in paths:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            out.append(resp.status)
            if gap_s:
                time.sleep(gap_s)
    finally:
        conn.close()
    return out


def conf(template: str, upstream: str) -> str:
    if template == REVERSE_PROXY:
        host, port = upstream.split(":")
        return render(REVERSE_PROXY, reverse_proxy_data(upstream_host=host, upstream_port=int(port),
                                                        rate_limit=LIMIT.template_data()))
    return render(LOAD_BALANCER, load_balancer_data(upstreams=[upstream], rate_limit=LIMIT.template_data()))


@pytest.mark.parametrize("template", [REVERSE_PROXY, LOAD_BALANCER])
def test_over_the_limit_gets_429_while_clients_under_it_are_all_served(template):
    with Upstream("app", quiet=True) as up, Nginx(conf(template, up.address)) as nginx:
        checked = nginx.test()
        assert checked.returncode == 0, checked.stderr
        nginx.start()
        with ThreadPoolExecutor(max_workers=len(POLITE) + 1) as pool:
            polite = [pool.submit(statuses, nginx.port, ip, ["/"] * POLITE_REQUESTS, POLITE_GAP_S) for ip in POLITE]
            t0 = time.monotonic()
            hammer = pool.submit(statuses, nginx.port, AGGRESSOR, ["/"] * 80)
            hammered = hammer.result()
            elapsed = time.monotonic() - t0
            static = statuses(nginx.port, AGGRESSOR, ["/static/app.js"] * 10)
            served_politely = [s for f in polite for s in f.result()]

        assert set(hammered) <= {200, 429}, hammered  # refused with 429, never an error
        ok = hammered.count(200)
        # the first request plus the burst pass at once; then the rate (with a second's slack)
        assert LIMIT.burst + 1 <= ok <= LIMIT.burst + 1 + math.ceil(elapsed * LIMIT.per_minute / 60) + 1, (ok, elapsed)
        assert hammered[: LIMIT.burst + 1] == [200] * (LIMIT.burst + 1)
        assert hammered.count(429) >= 80 - ok
        # static assets are never counted: the app answers them (upstream.py has no such file: 404), nginx never 429s
        assert static == [404] * 10, static
        assert served_politely == [200] * (len(POLITE) * POLITE_REQUESTS)  # nobody under the limit sees an error
        assert "limiting requests" in nginx.error_log  # limit_req_log_level warn: the refusals are logged
