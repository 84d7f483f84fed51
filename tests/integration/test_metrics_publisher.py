"""The host-side metrics publisher (cloudinit/scaleladder-metrics) against moto_server.

A small "app" process sends StatsD lines the way the containers do; the publisher, run from
the same config file the user data ships (ladder.metrics.publisher_config), publishes them to
a local CloudWatch API (moto in server mode, 127.0.0.1). Read back with boto3: the metrics
arrive under the namespace, names and dimensions the alarms and the worker group's target
tracking use; latency arrives as raw values (SampleCount = requests; percentiles possible).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.alarms import app_metric_alarms, queue_alarm
from ladder import metrics
from tests.integration.credentials_harness import REGION, moto_server

SCRIPT = Path(__file__).resolve().parents[2] / "cloudinit" / "scaleladder-metrics"
STACK = "phase2"
LATENCIES = [float(ms) for ms in range(5, 505, 5)]  # 100 requests, 5..500 ms
APP = """\
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lines = ["QueueWaiting:17|g", "QueueWaiting:42|g"]  # the last value of the minute counts
lines += [f"RequestLatency:{ms}|ms" for ms in range(5, 505, 5)]
lines += ["ServerErrors:1|c"] * 3 + ["ServerErrors:2|c|@0.5"]  # 2 sampled at 1/2 = 4
lines += ["Stolen:1|c", "QueueWaiting:5|c", "garbage", "RequestLatency:nan|ms"]  # not in the contract: dropped
for i in range(0, len(lines), 20):  # several lines per datagram, as StatsD clients batch
    s.sendto("\\n".join(lines[i:i + 20]).encode(), ("127.0.0.1", port))
"""


def load_script() -> Any:
    loader = importlib.machinery.SourceFileLoader("scaleladder_metrics", str(SCRIPT))
    spec = importlib.util.spec_from_loader("scaleladder_metrics", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def cloudwatch(endpoint: str) -> Any:
    import boto3

    return boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run app -> publisher -> moto once; yield the CloudWatch client reading moto."""
    config = tmp_path_factory.mktemp("metrics") / "metrics.json"
    config.write_text(metrics.publisher_config(REGION, STACK))
    with moto_server() as aws:
        env = {**os.environ, **aws.env}
        pub = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config), "--listen-host", "127.0.0.1",
                                "--listen-port", "0", "--flush-seconds", "30"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            assert pub.stdout is not None
            line = pub.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:"), line + (pub.stderr.read() if pub.stderr else "")
            port = int(line.rsplit(":", 1)[1])
            subprocess.run([sys.executable, "-c", APP, str(port)], check=True, timeout=30)
        finally:
            pub.terminate()  # SIGTERM: the publisher flushes what it holds, then exits
            _, err = pub.communicate(timeout=30)
        assert pub.returncode == 0, err
        assert "PutMetricData failed" not in err, err
        assert "dropped 4 lines" in err, err
        yield cloudwatch(aws.endpoint)


def stats(cw: Any, name: str, dims: dict[str, str], statistics: list[str]) -> dict[str, float]:
    now = datetime.now(UTC)
    points = cw.get_metric_statistics(
        Namespace=metrics.APP_NAMESPACE, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=3600,
        Statistics=statistics)["Datapoints"]
    assert len(points) == 1, points
    return points[0]


def test_the_alarmed_metrics_arrive_with_the_alarms_dimensions(published: Any) -> None:
    listed = published.list_metrics(Namespace=metrics.APP_NAMESPACE)["Metrics"]
    arrived = {(m["MetricName"], json.dumps(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed}
    wanted = [queue_alarm(STACK), *[s for s in app_metric_alarms(STACK) if s.metric]]
    wanted_inputs = [(i.metric, i.dimensions) for s in app_metric_alarms(STACK) for i in s.inputs
                     if i.namespace == metrics.APP_NAMESPACE]
    for metric, dims in [(s.metric, s.dimensions) for s in wanted] + wanted_inputs:
        assert (metric, json.dumps(sorted(dict(dims).items()))) in arrived, (metric, dims, arrived)
    assert {m["MetricName"] for m in listed} == {"QueueWaiting", "RequestLatency", "ServerErrors"}  # "Stolen" dropped


def test_queue_depth_is_the_last_gauge_value(published: Any) -> None:
    point = stats(published, "QueueWaiting", {"Stack": STACK}, ["Maximum", "SampleCount"])
    assert point["Maximum"] == 42 and point["SampleCount"] == 1


def test_latency_arrives_as_raw_values(published: Any) -> None:
    point = stats(published, "RequestLatency", {"Stack": STACK}, ["SampleCount", "Sum", "Minimum", "Maximum"])
    assert point["SampleCount"] == len(LATENCIES)  # one value per request: the error rate's denominator
    assert point["Sum"] == sum(LATENCIES) and point["Minimum"] == 5 and point["Maximum"] == 500
    assert point["Unit"] == "Milliseconds"


def test_server_errors_are_summed_with_their_sample_rate(published: Any) -> None:
    assert stats(published, "ServerErrors", {"Stack": STACK}, ["Sum"])["Sum"] == 3 + 4


def test_timers_use_values_and_counts_never_statistic_sets() -> None:
    """The datum shape CloudWatch computes p95 from; more distinct values than one datum holds split."""
    mod = load_script()
    cfg = json.loads(metrics.publisher_config(REGION, STACK))
    agg = mod.Aggregator(cfg["metrics"])
    agg.ingest("\n".join(f"RequestLatency:{i}|ms" for i in range(400)).encode())
    agg.ingest(b"RequestLatency:7|ms")
    data = mod.metric_data(cfg, *agg.drain(), now=datetime.now(UTC))
    latency = [d for d in data if d["MetricName"] == "RequestLatency"]
    assert all("StatisticValues" not in d and len(d["Values"]) <= metrics.MAX_VALUES_PER_DATUM for d in latency)
    assert sum(sum(d["Counts"]) for d in latency) == 401 and len(latency) == 3
    # a quiet minute: the counter reads 0 (absent would mean the publisher stopped), no stale gauge
    quiet = {d["MetricName"]: d for d in mod.metric_data(cfg, *agg.drain(), now=datetime.now(UTC))}
    assert quiet["ServerErrors"]["Value"] == 0 and "QueueWaiting" not in quiet and "RequestLatency" not in quiet


def test_api_hosts_publish_whether_the_api_answers() -> None:
    """Review aws finding 8: ApiAnswers is 1 while the health path answers 200, 0 when it answers
    5xx or nothing listens (the api-answers alarm reads 0 and the gap as a breach); a container
    cannot send it over StatsD; a host without the API publishes none."""
    import http.server
    import threading

    status = {"code": 200}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(status["code"] if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mod = load_script()
    url = metrics.health_probe_url("/health", server.server_address[1])
    cfg = json.loads(metrics.publisher_config(REGION, STACK, url))

    def answers() -> float | None:
        agg = mod.Aggregator(cfg["metrics"])
        agg.ingest(b"ApiAnswers:1|g\nApiAnswers:1|c")  # not from StatsD
        assert agg.dropped == 2
        data = mod.metric_data(cfg, *agg.drain(), now=datetime.now(UTC), probes=mod.probe(cfg))
        return next((d["Value"] for d in data if d["MetricName"] == "ApiAnswers"), None)

    try:
        assert answers() == 1.0
        status["code"] = 503
        assert answers() == 0.0
    finally:
        server.shutdown()
        server.server_close()
    assert answers() == 0.0  # nothing listens
    worker = json.loads(metrics.publisher_config(REGION, STACK))
    assert "ApiAnswers" not in worker["metrics"] and mod.probe(worker) == {}
