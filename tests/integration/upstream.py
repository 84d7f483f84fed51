"""A tiny HTTP upstream standing in for the app: stdlib only, threaded, HTTP/1.1 keep-alive.

    python tests/integration/upstream.py --id a [--port 3000] [--cpu-ms 1.0] [--health-path /health]

It prints `listening HOST:PORT` once it accepts connections; `--port 0` (the default) lets
the kernel pick a free port, so parallel test runs never race for one.

Every JSON answer carries the server's `id`, so a test (or a benchmark) sees which
instance a load balancer picked. Routes:
  GET /, GET <health-path>  {"id", "path", "peer"}; `peer` is nginx's side of the upstream
                            connection, so reused keepalive connections are visible
  GET /echo                 also the request headers nginx sent
  GET /large                a ~200 KB JSON body (for gzip)
  GET /leaky                sets headers the proxy must hide or replace
  POST /                    reads the body, answers its size
`--cpu-ms` burns about that much CPU per request, like an app doing work.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LARGE = [{"n": i, "name": f"item-{i}", "tags": ["alpha", "beta", "gamma"]} for i in range(3000)]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default (5) drops connections under a load test


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive expects
    wbufsize = 1 << 16  # headers and a small body leave in one write, never half a response
    server: Server
    upstream_id = "upstream"
    health_path = "/health"
    cpu_ms = 0.0

    def log_message(self, *args) -> None:  # quiet: tests read answers, not logs
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps({"id": self.upstream_id, **body}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _burn(self) -> None:
        end = time.thread_time() + self.cpu_ms / 1000
        while time.thread_time() < end:
            pass

    def do_GET(self) -> None:
        self._burn()
        path = self.path.split("?", 1)[0]
        base = {"path": self.path, "peer": "%s:%d" % self.client_address[:2]}
        if path in ("/", self.health_path):
            self._send(200, base)
        elif path == "/echo":
            self._send(200, {**base, "headers": dict(self.headers.items())})
        elif path == "/large":
            self._send(200, {"items": LARGE})
        elif path == "/leaky":
            self._send(200, base, {"X-Powered-By": "Express", "X-Frame-Options": "ALLOWALL"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        self._burn()
        self._send(200, {"received": size})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--id", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--health-path", default="/health")
    parser.add_argument("--cpu-ms", type=float, default=0.0)
    args = parser.parse_args()
    Handler.upstream_id, Handler.health_path, Handler.cpu_ms = args.id, args.health_path, args.cpu_ms
    with Server((args.host, args.port), Handler) as server:
        print(f"listening {args.host}:{server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
