"""How long phase 6's pods keep serving once Kubernetes decides to stop them: the one place
for the timing facts a rollout, a node drain or a scale-down relies on (components/workloads.py
reads them; tests/unit/test_climb_eks.py checks that they fit together).

Pod termination (Kubernetes docs, "Pod Lifecycle" > "Termination of Pods"): the pod leaves
its Service's endpoints and, with the load balancer controller's readiness gate, its ALB
target is deregistered, *while* the preStop hook runs; SIGTERM follows the hook; SIGKILL
comes at `terminationGracePeriodSeconds`, counted from the start (the hook's time included).

App pods behind the ALB (target-type ip):
- preStop sleep > the time the ALB keeps sending *new* requests to a target the controller
  has deregistered. AWS documents no figure; reports on kubernetes-sigs/aws-load-balancer-
  controller: #1064 (25 s sleep stopped the 502/504s), #2106 (40 s: 502s "very rarely", 70 s
  none), #3270 (a deregistering IP target still got requests; deregistration took minutes
  regardless of the delay), #1719 (sleep = controller reaction + ELB API propagation + RTT).
  We take 40 s.
- drain: after SIGTERM the app finishes requests already running. None lasts longer than
  60 s: CloudFront's origin read timeout (components/cdn.py `origin_read_timeout=60`) and
  the ALB idle timeout (`idle_timeout.timeout_seconds=60`) cut it first.
- deregistration delay: how long the ALB lets in-flight requests on a draining target finish
  (ELB docs, "Target groups for your Application Load Balancers" > "Deregistration delay":
  default 300 s, 0-3600; a target that closes the connection early gives the client a 5xx).
  It must cover the longest request (60 s) and end before SIGKILL even when deregistration
  takes effect only as the preStop ends: delay <= grace - preStop.
- grace >= preStop + drain.

Workers: no traffic is routed to them; BullMQ's `worker.close()` on SIGTERM lets the running
job finish, so the grace period is the job bound (120 s).

PgBouncer pods (ClusterIP Service, clients keep pooled connections):
- PgBouncer's signals by version (pgbouncer/pgbouncer doc/usage.md "Signals", NEWS.md 1.23.0,
  #902): before 1.23 SIGTERM = immediate shutdown (every running transaction is cut) and
  SIGINT = safe shutdown (PAUSE + SHUTDOWN: waits for the servers to be released). From
  1.23.0 SIGTERM = "super safe shutdown" (SHUTDOWN WAIT_FOR_CLIENTS: waits until every client
  disconnects, which pooled clients never do by themselves) and SIGINT = SHUTDOWN
  WAIT_FOR_SERVERS (stop accepting, exit once every server is released); in 1.23+ a second
  signal during a shutdown turns it into an immediate one.
- So on every version the preStop hook does the draining itself and only returns once
  PgBouncer has exited: sleep until kube-proxy on every node has dropped the pod from the
  Service (new connections go elsewhere), send SIGINT, wait for the process to end. The
  kubelet's SIGTERM then finds nothing to cut (and never hits a shutdown in progress).
- endpoint propagation: EndpointSlice update -> kube-proxy rules on each node; seconds in a
  healthy cluster (kube-proxy `iptables.minSyncPeriod` default 1 s). We take 10 s.
- drain bound: the longest transaction we wait for. App transactions run inside requests
  (<= 60 s, above); a worker's run inside its job (<= the workers' 120 s grace). PgBouncer's
  `server_lifetime` (3600 s, ladder/pgbouncer.py) only retires idle server connections, so it
  is not a bound on a running one; a transaction longer than 120 s has no client waiting for
  it any more and is cut by SIGKILL at the grace period.
- grace >= preStop + drain.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PodStop:
    """What one kind of pod needs between "stop" and SIGKILL."""

    pre_stop_seconds: int
    """preStop: keep serving while traffic still arrives (0: no hook)."""
    drain_seconds: int
    """After the hook: the longest work the pod finishes before it exits."""
    grace_seconds: int
    """terminationGracePeriodSeconds (counts the hook too)."""

    def problems(self, name: str) -> list[str]:
        out = []
        if self.grace_seconds < self.pre_stop_seconds + self.drain_seconds:
            out.append(f"{name}: grace {self.grace_seconds}s < preStop {self.pre_stop_seconds}s + drain "
                       f"{self.drain_seconds}s")
        return out


LONGEST_REQUEST_SECONDS = 60
"""CloudFront origin read timeout and ALB idle timeout (components/cdn.py, components/workloads.py)."""

APP = PodStop(pre_stop_seconds=40, drain_seconds=LONGEST_REQUEST_SECONDS, grace_seconds=100)
ALB_DEREGISTRATION_DELAY_SECONDS = 60
"""`deregistration_delay.timeout_seconds` of the app's target group: >= the longest request,
<= APP.grace_seconds - APP.pre_stop_seconds."""

WORKER_JOB_SECONDS = 120
WORKERS = PodStop(pre_stop_seconds=0, drain_seconds=WORKER_JOB_SECONDS, grace_seconds=WORKER_JOB_SECONDS)

ENDPOINT_PROPAGATION_SECONDS = 10
PGBOUNCER_DRAIN_SECONDS = max(LONGEST_REQUEST_SECONDS, WORKER_JOB_SECONDS)
PGBOUNCER = PodStop(pre_stop_seconds=ENDPOINT_PROPAGATION_SECONDS, drain_seconds=PGBOUNCER_DRAIN_SECONDS,
                    grace_seconds=ENDPOINT_PROPAGATION_SECONDS + PGBOUNCER_DRAIN_SECONDS + 10)

CA_SAFE_TO_EVICT_LOCAL_VOLUMES = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes"
"""Pod annotation naming (comma-separated) the volumes Cluster Autoscaler may discard on
scale-down. Without it a pod with a disk-backed emptyDir (or hostPath) pins its node:
kubernetes/autoscaler cluster-autoscaler/utils/drain/drain.go `isLocalVolume`
(`HostPath != nil || EmptyDir != nil && Medium != Memory`); memory-backed emptyDirs never block."""


def pgbouncer_pre_stop_script(pre_stop_seconds: int = PGBOUNCER.pre_stop_seconds) -> str:
    """The PgBouncer container's preStop: wait out endpoint propagation, start a safe shutdown
    (SIGINT on every version, see above) and return only once PgBouncer has exited. POSIX sh and
    /proc (the image has no procps); the pod shares one process namespace with the reload sidecar,
    so PgBouncer is found by name, not as PID 1."""
    return f"""sleep {pre_stop_seconds}
for p in /proc/[0-9]*; do
  [ "$(cat "$p/comm" 2>/dev/null)" = pgbouncer ] && kill -INT "${{p#/proc/}}" && pid=${{p#/proc/}}
done
[ -n "$pid" ] || exit 0
while [ -d "/proc/$pid" ]; do sleep 1; done
"""


def problems() -> list[str]:
    """Every timing fact above that does not fit the others (empty when they all do)."""
    out = APP.problems("app") + WORKERS.problems("workers") + PGBOUNCER.problems("pgbouncer")
    if ALB_DEREGISTRATION_DELAY_SECONDS < LONGEST_REQUEST_SECONDS:
        out.append(f"ALB deregistration delay {ALB_DEREGISTRATION_DELAY_SECONDS}s cuts requests of up to "
                   f"{LONGEST_REQUEST_SECONDS}s")
    if ALB_DEREGISTRATION_DELAY_SECONDS > APP.grace_seconds - APP.pre_stop_seconds:
        out.append(f"ALB deregistration delay {ALB_DEREGISTRATION_DELAY_SECONDS}s outlasts the app pod "
                   f"(grace {APP.grace_seconds}s - preStop {APP.pre_stop_seconds}s)")
    if PGBOUNCER_DRAIN_SECONDS < WORKER_JOB_SECONDS:
        out.append("PgBouncer stops draining before a worker's job may end")
    return out
