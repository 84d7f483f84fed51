"""The capacity model (ladder/capacity.py): capacity never falls on a climb, phase 6 is sized
from it, and the deployed pods carry the CPU the model assumes."""

from __future__ import annotations

import pytest

from ladder import aws_facts, capacity, engine
from ladder.capacity import capacity_of, nodes_for, peak_load
from ladder.phases import PHASES, phase_defaults
from ladder.prices import catalog

from .plans import plan, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
A = capacity.default_assumptions()


def preset_config(n: int, **overrides):
    """The preset stack's validated config (no plan needed), with `scaleladder:` overrides."""
    return engine.validate_stack(stack_values(f"phase{n}", **overrides), stack=f"phase{n}")


def climb_shortfalls(configs: dict[int, object]) -> list[str]:
    """Where a phase's maximum capacity is below the phase before it, or below its own peak."""
    out = []
    caps = {n: capacity_of(cfg) for n, cfg in configs.items()}
    for n in sorted(caps):
        peak = peak_load(PHASES[n].concurrent_users, PHASES[n].messages_per_day, A)
        if caps[n].requests_per_s < peak.requests_per_s or caps[n].jobs_per_s < peak.jobs_per_s:
            out.append(f"phase {n}: {caps[n]} below its own peak {peak}")
        if n - 1 in caps and (caps[n].requests_per_s < caps[n - 1].requests_per_s
                              or caps[n].jobs_per_s < caps[n - 1].jobs_per_s):
            out.append(f"phase {n}: {caps[n]} below phase {n - 1}'s {caps[n - 1]}")
    return out


def test_every_catalog_ec2_type_has_vcpus_and_pod_slots():
    for region in catalog().regions:
        for itype in catalog().instance_types(region, "ec2_instance_hour"):
            assert itype in aws_facts.EC2_VCPUS and itype in aws_facts.EKS_MAX_PODS, itype


def test_each_phase_carries_its_peak_and_at_least_the_phase_below():
    assert climb_shortfalls({n: preset_config(n) for n in PHASES}) == []


def test_phase6_with_todays_ten_replicas_falls_below_phase5():
    """The mistake finding 6 describes: HPA max 10 pods is a fraction of phase 5's 30 hosts."""
    configs = {5: preset_config(5), 6: preset_config(6, eks={"hpa": {"maxReplicas": 10}})}
    problems = climb_shortfalls(configs)
    assert any("phase 6" in p and "phase 5" in p for p in problems), problems


def test_phase6_capped_by_its_nodes_is_caught():
    cfg = preset_config(6, eks={"nodesMin": 2, "nodesMax": 10})
    cap = capacity_of(cfg)
    assert cap.bound_by == "nodes" and cap.requests_per_s < capacity_of(preset_config(5)).requests_per_s


def test_phase6_hpa_starts_at_phase5s_desired_capacity_and_workers_pgbouncer_do_not_shrink():
    p5, p6 = phase_defaults(5), phase_defaults(6)
    per_host = capacity.host_rps(p5["appTier"]["instanceType"], p5["appTier"]["cpuTarget"])
    per_pod = capacity.app_rps(capacity.APP_POD_CPU.value, p6["eks"]["hpa"]["cpuPercent"])
    assert p6["eks"]["hpa"]["minReplicas"] * per_pod >= p5["appTier"]["desired"] * per_host
    assert p6["eks"]["hpa"]["maxReplicas"] * per_pod >= p5["appTier"]["max"] * per_host
    assert p6["workers"]["max"] >= p5["workers"]["max"] and p6["pgbouncer"]["instances"] >= p5["pgbouncer"]["instances"]


def test_phase6_nodes_hold_every_pod_at_maximum_scale():
    cfg = preset_config(6)
    pods = capacity.cluster_pods(cfg.eks.hpa.max_replicas, cfg.workers.max, cfg.pgbouncer.instances)
    assert nodes_for(pods, cfg.eks.node_instance_type) <= cfg.eks.nodes_max
    assert capacity_of(cfg).tiers["nodes"] >= capacity_of(cfg).tiers["app"]


def test_deployed_pods_request_the_cpu_the_model_counts():
    p = plan("phase6")

    def cpu(name: str, container: str) -> tuple[str, str]:
        d = next(r for r in p.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == name)
        c = next(c for c in d.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == container)
        return c["resources"]["requests"]["cpu"], c["resources"]["limits"]["cpu"]

    assert cpu("app", "app") == (capacity.millicores(capacity.APP_POD_CPU.value),) * 2
    assert cpu("pgbouncer", "pgbouncer") == ("1000m", "1000m"), "single-threaded PgBouncer gets one full core"
    assert cpu("workers", "worker")[0] == capacity.millicores(capacity.WORKER_POD_CPU.value)


def test_packing_respects_cpu_and_pod_slots():
    usable = capacity.node_usable_cpu("m6i.large")
    assert 1.7 < usable < 2  # 2 vCPUs less 70m kubeReserved and 125m of DaemonSets
    assert nodes_for([1.0] * 3, "m6i.large") == 3  # one 1-CPU pod per 2-vCPU node
    assert nodes_for([1.0, 0.25, 0.25, 0.25], "m6i.large") == 1  # small pods fill the rest
    slots = capacity.node_pod_slots("m6i.large")
    assert nodes_for([0.01] * (slots + 1), "m6i.large") == 2  # 29 pods minus 3 DaemonSet pods per node
    with pytest.raises(ValueError, match="cannot fit"):
        nodes_for([2.0], "m6i.large")


def test_kube_reserved_follows_the_eks_ami_table():
    assert aws_facts.eks_kube_reserved_cpu(2) == pytest.approx(0.07)
    assert aws_facts.eks_kube_reserved_cpu(4) == pytest.approx(0.08)
    assert aws_facts.eks_kube_reserved_cpu(8) == pytest.approx(0.09)


def test_more_requests_per_user_raise_the_peak_and_the_phase6_defaults():
    heavy = {**A, "requests_per_user_minute": A["requests_per_user_minute"] * 2}
    spec = PHASES[6]
    base = capacity.eks_defaults(phase_defaults(5), spec.concurrent_users, spec.messages_per_day, A)
    more = capacity.eks_defaults(phase_defaults(5), spec.concurrent_users, spec.messages_per_day, heavy)
    assert more["eks"]["hpa"]["maxReplicas"] > base["eks"]["hpa"]["maxReplicas"]
    assert more["eks"]["nodesMax"] > base["eks"]["nodesMax"]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_the_app_groups_cpu_target_is_reachable_by_one_node_process(n):
    """A 2-vCPU host running one Node.js process never exceeds 50 % CPU: a 60 % target would
    never scale the group out (the catalog's old default)."""
    t = preset_config(n).app_tier
    assert capacity.target_tracking_problem(t.instance_type, t.cpu_target) is None
    assert capacity.target_tracking_problem("c6i.large", 60) is not None
    assert capacity.target_tracking_problem("c6i.xlarge", 20) is None
