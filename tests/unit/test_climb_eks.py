"""The 5 -> 6 climb and phase 6's rolling changes, from the plan's dependency graph and manifests.

- CloudFront's app origin waits for the app Deployment (ready = healthy in the ALB, through the
  readiness gate), and no Deployment waits for the distribution.
- The first phase-6 `up` (climb.keepEc2Tier) keeps the EC2 tier exactly as phase 5 built it
  beside the EKS path; dropping the flag is refused until an `up` recorded that EKS served;
  with a certificate, until the operator confirmed where cdn.originDomain points. 6 -> 5 too.
- Pods stop without losing capacity: preStop, grace and the ALB's deregistration delay from
  ladder/lifecycle.py and consistent; PgBouncer drains; nothing pins a node for the autoscaler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from functools import cache
from typing import Any

import pytest

from ladder import climb_eks, config, engine, lifecycle, render
from ladder.config import ConfigError

from .plans import plan, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
APP_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
EC2_TIER = {"scaleladder:app:Fleet", "scaleladder:data:PgBouncer"}


def depends_on(p: engine.Plan) -> dict[str, set[str]]:
    """urn -> every urn it waits for, directly or through others (explicit and input dependencies)."""
    direct = {r.urn: set(r.options["dependsOn"]) for r in p.resources}
    memo: dict[str, set[str]] = {}

    def walk(urn: str) -> set[str]:
        if urn not in memo:
            memo[urn] = set()
            for d in direct.get(urn, ()):
                memo[urn] |= {d} | walk(d)
        return memo[urn]

    return {urn: walk(urn) for urn in direct}


def deployment(p: engine.Plan, name: str) -> engine.Resource:
    return p.one(DEPLOYMENT, f"apps-{name}")


def app_origin(p: engine.Plan) -> dict:
    return next(o for o in p.one(DISTRIBUTION).inputs["origins"] if o["originId"] == "app")


def expected_origin(p: engine.Plan) -> str:
    """Where CloudFront reaches phase 6's app: the Ingress's ALB, or with a certificate the
    operator's cdn.originDomain (pointed at that ALB: the DNS step, climb.originDomainTarget)."""
    cfg = p.config
    return cfg.cdn.origin_domain if cfg.app.certificate_arn else p.outputs["ingressHostname"]


def under(p: engine.Plan, component_types: set[str]) -> list[engine.Resource]:
    """Every resource inside a component of one of `component_types` (at any depth)."""
    by_urn = p.by_urn
    out = []
    for r in p.resources:
        parent = r.parent
        while parent is not None:
            if by_urn[parent].type in component_types:
                out.append(r)
                break
            parent = by_urn[parent].parent
    return out


@cache
def phase5() -> engine.Plan:
    """A phase-5 stack after its second `up` (the first one's outputs read back: STATIC_URL is
    then the CDN's absolute URL), the state the climb starts from."""
    return engine.run("phase5", previous_outputs=engine.public(plan("phase5").outputs))


def climb_values(phase: int = 6, **overrides: Any) -> dict[str, Any]:
    """The phase-5 preset at `phase`, plus the sections only phase 6's preset sets (what an
    operator adds for EKS, e.g. the API's allowed ranges), with `overrides` merged in."""
    values = stack_values("phase5", **overrides)
    values["scaleladder:phase"] = phase
    for k, v in stack_values("phase6").items():
        values.setdefault(k, v)
    return values


@cache
def keep_up() -> engine.Plan:
    """The first phase-6 `up` of the climb: the phase-5 stack with phase 6 and climb.keepEc2Tier."""
    return engine.run("phase5", values=climb_values(climb={"keepEc2Tier": True}),
                      previous_outputs=engine.public(phase5().outputs))


# -- ordering ----------------------------------------------------------------------------------

def test_cloudfront_moves_to_the_ingress_only_after_the_app_deployment_is_ready():
    p = plan("phase6")
    waits = depends_on(p)
    cdn, app, ingress = p.one(DISTRIBUTION), deployment(p, "app"), p.one(INGRESS)
    assert app.urn in waits[cdn.urn], "the distribution must wait for the app Deployment's rollout"
    assert ingress.urn in waits[cdn.urn]
    assert app_origin(p)["domainName"] == expected_origin(p)
    # Ready means healthy in the ALB only with the readiness gate, which the controller injects
    # into pods created after the Ingress (its TargetGroupBinding) exists.
    assert ingress.urn in waits[app.urn], "app pods created before the Ingress get no ALB readiness gate"
    (ns,) = [m for m in render.k8s_manifests(p) if m["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    # Pulumi awaits the rollout unless told not to.
    annotations = app.inputs["metadata"].get("annotations") or {}
    assert annotations.get("pulumi.com/skipAwait") != "true"
    assert p.outputs[climb_eks.OUT_EKS_SERVED] == p.outputs["ingressHostname"]


def test_no_deployment_waits_for_the_distribution_and_the_pods_static_url_is_known_before():
    for p in (plan("phase6"), None):
        p = p or keep_up()
        waits = depends_on(p)
        cdn = p.one(DISTRIBUTION).urn
        for d in p.of_type(DEPLOYMENT):
            assert cdn not in waits[d.urn], f"{d.name} waits for the distribution (a cycle with its origin)"
    env = app_env(keep_up())
    assert env["STATIC_URL"] == phase5().outputs["staticUrl"], "the climb keeps the URL phase 5 served"
    assert app_env(plan("phase6"))["STATIC_URL"] == "/static", "a new stack: same-host path, no CDN name yet"
    aliased = plan("phase6", cdn={"aliases": ["www.example.com"], "certificateArn": APP_CERT})
    assert app_env(aliased)["STATIC_URL"] == "https://www.example.com/static"


def app_env(p: engine.Plan) -> dict[str, str]:
    manifests = render.k8s_manifests(p)
    (app,) = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "app"]
    name = next(e["configMapRef"]["name"] for e in app["spec"]["template"]["spec"]["containers"][0]["envFrom"]
                if "configMapRef" in e)
    (cm,) = [m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == name]
    return cm["data"]


# -- the keep flag -----------------------------------------------------------------------------

def test_the_first_phase6_up_keeps_the_ec2_tier_unchanged_beside_the_eks_path():
    before, during = phase5(), keep_up()
    after = {r.urn: r for r in during.resources}
    kept = under(before, EC2_TIER)
    assert kept and any(r.type == "aws:autoscaling/group:Group" for r in kept)
    for r in kept:  # same URN, same inputs: nothing on the serving path is replaced, updated or deleted
        assert r.urn in after, f"{r.type} {r.name} is deleted in the first phase-6 up"
        assert engine.public(after[r.urn].inputs) == engine.public(r.inputs), f"{r.type} {r.name} changes"
    # Nothing of phase 5 goes in this `up`, and nothing but tags (phase "6") and the dashboard changes:
    # the host role, the hosts' log group and publisher, the firewall rules, the distribution ...
    def untagged(inputs: dict) -> dict:
        return {k: v for k, v in engine.public(inputs).items() if k not in ("tags", "tagsAll")}
    for r in before.resources:
        assert r.urn in after, f"{r.type} {r.name} is deleted in the first phase-6 up"
        if r.type != "aws:cloudwatch/dashboard:Dashboard":
            assert untagged(after[r.urn].inputs) == untagged(r.inputs), f"{r.type} {r.name} changes"
    # ... while the EKS path exists and CloudFront moves to it once its app is ready.
    assert deployment(during, "app").urn in depends_on(during)[during.one(DISTRIBUTION).urn]
    assert app_origin(during)["domainName"] == expected_origin(during)
    assert during.outputs[climb_eks.OUT_EC2_KEPT] is True
    assert during.outputs[climb_eks.OUT_EC2_ALB] == before.outputs["originUrl"].split("://")[1]
    assert during.outputs[climb_eks.OUT_EKS_SERVED] == during.outputs["ingressHostname"]


def test_the_second_phase6_up_removes_the_ec2_tier_once_the_eks_path_served():
    previous = engine.public(keep_up().outputs)
    climb = {"originDomainTarget": previous["ingressHostname"]} if keep_up().config.app.certificate_arn else {}
    after = engine.run("phase5", values=climb_values(**({"climb": climb} if climb else {})), previous_outputs=previous)
    assert not under(after, EC2_TIER) and not after.of_type("aws:autoscaling/group:Group")
    assert deployment(after, "app").urn in depends_on(after)[after.one(DISTRIBUTION).urn]
    assert climb_eks.OUT_EC2_KEPT not in after.outputs


def preset(phase: int, **climb: Any) -> config.StackConfig:
    """The phase-5 preset (as the CLI hands it over) at `phase`, with these `climb` keys."""
    return engine.validate_stack(climb_values(phase, **({"climb": climb} if climb else {})))


def with_cert(cfg: config.StackConfig) -> bool:
    return cfg.app.certificate_arn is not None and cfg.cdn.origin_domain is not None


SERVED = {"phase": 6, "ec2TierKept": True, "ingressHostname": "alb-1.elb.amazonaws.com",
          "eksServed": "alb-1.elb.amazonaws.com"}


def test_the_ec2_tier_cannot_go_before_the_eks_path_served():
    with pytest.raises(ConfigError) as err:  # the program itself, straight from phase 5
        engine.run("phase5", values=climb_values(), previous_outputs=engine.public(phase5().outputs))
    assert "scaleladder:climb.keepEc2Tier" in str(err.value) and "allowed now: true" in str(err.value)

    cfg = preset(6, originDomainTarget="alb-1.elb.amazonaws.com") if with_cert(preset(5)) else preset(6)
    assert climb_eks.problems(cfg, SERVED) == []
    failed = {k: v for k, v in SERVED.items() if k != "eksServed"}  # the keep `up` did not finish
    (problem,) = climb_eks.problems(cfg, failed)
    assert problem.startswith("scaleladder:climb.keepEc2Tier")
    assert climb_eks.problems(cfg, {"phase": 5, "eksServed": "alb-1.elb.amazonaws.com"}), \
        "a phase-5 stack never served from EKS, whatever a stale output says"
    assert climb_eks.problems(cfg, {}) == [], "a new stack has no EC2 tier to keep"


def test_with_a_certificate_the_ec2_tier_goes_only_once_the_origin_name_points_at_the_ingress():
    if not with_cert(preset(5)):
        pytest.skip("the preset has no certificate")
    (problem,) = climb_eks.problems(preset(6), SERVED)
    assert problem.startswith("scaleladder:climb.originDomainTarget") and "alb-1.elb.amazonaws.com" in problem
    assert climb_eks.problems(preset(6, originDomainTarget="alb-0.elb.amazonaws.com"), SERVED)
    assert climb_eks.problems(preset(6, originDomainTarget="alb-1.elb.amazonaws.com"), SERVED) == []


def test_stepping_back_to_5_first_brings_the_ec2_tier_up_beside_eks():
    (problem,) = climb_eks.problems(preset(5), {"phase": 6, "eksServed": "alb-1.elb.amazonaws.com"})
    assert problem.startswith("scaleladder:phase") and "allowed now: 6" in problem
    kept = {"phase": 6, "ec2TierKept": True, "ec2AlbHostname": "lb-1.elb.amazonaws.com"}
    if with_cert(preset(5)):
        assert climb_eks.problems(preset(5), kept)[0].startswith("scaleladder:climb.originDomainTarget")
        assert climb_eks.problems(preset(5, originDomainTarget="lb-1.elb.amazonaws.com"), kept) == []
    else:
        assert climb_eks.problems(preset(5), kept) == []


def test_the_keep_flag_belongs_to_phase_6_only():
    with pytest.raises(ConfigError) as err:
        preset(5, keepEc2Tier=True)
    assert "scaleladder:climb.keepEc2Tier" in str(err.value)
    assert preset(6, keepEc2Tier=True).climb.keep_ec2_tier


# -- pod lifecycle -----------------------------------------------------------------------------

def pod(p: engine.Plan, name: str) -> dict:
    (m,) = [m for m in render.k8s_manifests(p) if m["kind"] == "Deployment" and m["metadata"]["name"] == name]
    return m


def test_timing_facts_fit_together():
    assert lifecycle.problems() == []
    app = lifecycle.APP
    assert app.pre_stop_seconds < app.grace_seconds
    assert lifecycle.LONGEST_REQUEST_SECONDS <= lifecycle.ALB_DEREGISTRATION_DELAY_SECONDS \
        <= app.grace_seconds - app.pre_stop_seconds
    assert lifecycle.PGBOUNCER.grace_seconds >= lifecycle.PGBOUNCER.pre_stop_seconds + lifecycle.PGBOUNCER_DRAIN_SECONDS
    assert lifecycle.PGBOUNCER_DRAIN_SECONDS >= lifecycle.WORKER_JOB_SECONDS


def test_app_pods_outlast_the_albs_deregistration():
    p = plan("phase6")
    spec = pod(p, "app")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = spec["terminationGracePeriodSeconds"]
    (ingress,) = [m for m in render.k8s_manifests(p) if m["kind"] == "Ingress"]
    attrs = dict(kv.split("=") for kv in
                 ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-group-attributes"].split(","))
    delay = int(attrs["deregistration_delay.timeout_seconds"])
    assert pre_stop >= lifecycle.APP.pre_stop_seconds, "preStop shorter than the ALB keeps sending new requests"
    assert grace >= pre_stop + lifecycle.APP.drain_seconds
    assert lifecycle.LONGEST_REQUEST_SECONDS <= delay <= grace - pre_stop
    idle = dict(kv.split("=") for kv in
                ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"].split(","))
    assert int(idle["idle_timeout.timeout_seconds"]) <= lifecycle.LONGEST_REQUEST_SECONDS


def test_pgbouncer_pods_drain_before_they_stop():
    p = plan("phase6")
    spec = pod(p, "pgbouncer")["spec"]["template"]["spec"]
    main = next(c for c in spec["containers"] if c["name"] == "pgbouncer")
    command = main["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and "kill -INT" in command[2], \
        "SIGTERM alone cuts transactions before 1.23 and waits for pooled clients forever from 1.23"
    assert spec["terminationGracePeriodSeconds"] >= lifecycle.PGBOUNCER.pre_stop_seconds + lifecycle.PGBOUNCER_DRAIN_SECONDS
    assert spec["shareProcessNamespace"] is True, "the hook finds PgBouncer by name in the pod's processes"


def test_the_pgbouncer_pre_stop_hook_sends_sigint_and_returns_once_the_process_exited(tmp_path):
    """The hook's own shell, against a stand-in process (a unique name, so no real PgBouncer on
    this machine is signalled) that traps SIGINT, finishes for a moment and exits."""
    name = "pgbq" + uuid.uuid4().hex[:8]
    marker = tmp_path / "got"
    fake = tmp_path / name
    ready = tmp_path / "ready"
    fake.write_text(f"#!/bin/sh\ntrap 'echo INT > {marker}; sleep 1; exit 0' INT\ntouch {ready}\n"
                    "while :; do sleep 0.1; done\n")
    fake.chmod(0o755)
    # A shell cannot trap a signal ignored when it started: give the stand-in SIGINT's default
    # disposition whatever the test runner's (an xdist worker may ignore it).
    child = subprocess.Popen([str(fake)], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    reaper = threading.Thread(target=child.wait)  # the pod's PID 1 reaps the exited process
    reaper.start()
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:  # the trap is set before `ready`
            time.sleep(0.05)
        script = lifecycle.pgbouncer_pre_stop_script(pre_stop_seconds=0).replace("= pgbouncer ]", f"= {name} ]")
        assert script != lifecycle.pgbouncer_pre_stop_script(pre_stop_seconds=0)
        started = time.monotonic()
        subprocess.run(["sh", "-c", script], check=True, timeout=20)
        assert time.monotonic() - started >= 0.9, "the hook returned before the process finished draining"
        assert marker.read_text().strip() == "INT"
        reaper.join(5)
        assert child.returncode == 0
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        reaper.join(5)


def test_rollouts_never_lower_capacity_and_no_pod_pins_a_node():
    p = plan("phase6")
    for m in render.k8s_manifests(p):
        if m["kind"] != "Deployment":
            continue
        name = m["metadata"]["name"]
        rolling = m["spec"]["strategy"]["rollingUpdate"]
        assert m["spec"]["strategy"]["type"] == "RollingUpdate" and rolling["maxUnavailable"] == 0, name
        template = m["spec"]["template"]
        safe = set(((template["metadata"].get("annotations") or {}).get(lifecycle.CA_SAFE_TO_EVICT_LOCAL_VOLUMES)
                    or "").split(","))
        for v in template["spec"].get("volumes", []):
            if "emptyDir" in v:
                assert v["emptyDir"].get("medium") == "Memory" or v["name"] in safe, \
                    f"{name}: disk-backed emptyDir {v['name']} blocks Cluster Autoscaler scale-down"
            assert "hostPath" not in v, name
