#!/usr/bin/env python3
"""Mutation check of the safety net: realistic one-line mistakes, each applied to a copy
of the repo, then the unit tests that cover it and the policy pack run against it.

A mutation is *killed* when a test fails or the policy pack reports a mandatory violation
(or the program refuses to plan); it *survives* when everything still passes. The list
below is the point: each entry is a mistake a reviewer has seen or could make, with the
reason it matters. Safety-relevant entries (`safety=True`) should never survive.

    .venv/bin/python scripts/mutate.py --rev HEAD --json /tmp/mut-after.json
    .venv/bin/python scripts/mutate.py --report /tmp/mut-before.json /tmp/mut-after.json

The repo is never touched: `git archive REV` is unpacked under a temporary directory (the
project's .venv symlinked in), and each mutated file is restored after its run. A tool to
run by hand, not a CI step (30 mutations take several minutes on two cores).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- mutate:begin -->", "<!-- mutate:end -->"


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    old: str
    """Regular expression (first match is replaced); write it so it finds the line in both
    old and new versions of the file where the code around it moved."""
    new: str
    why: str
    tests: tuple[str, ...]
    """The unit test files that should notice (a fast subset of tests/unit)."""
    stacks: tuple[str, ...] = ()
    """Preset stacks the policy pack checks (`ladder policy STACK`); none: no policy run."""
    safety: bool = True
    k: str = ""
    """A pytest -k expression narrowing `tests` to the ones that should notice (keeps a run short)."""


M = Mutation
T_SEC, T_POL, T_CRED = "tests/unit/test_security_phases.py", "tests/unit/test_policy.py", "tests/unit/test_credentials.py"
T_DATA, T_APP, T_P5, T_P6 = ("tests/unit/test_data_tier.py", "tests/unit/test_app_tier.py",
                             "tests/unit/test_phase5.py", "tests/unit/test_phase6.py")
T_CFG, T_SECX = "tests/unit/test_config.py", "tests/unit/test_security_paths.py"

MUTATIONS: list[Mutation] = [
    # --- the six survivors of issue 15 --------------------------------------------------
    M("boot-direct-tls-require", "cloudinit/boot.sh", r'if e\["DB_VIA_PGBOUNCER"\] == "true":',
      'if e["DB_VIA_PGBOUNCER"] in ("true", "false"):',
      "hosts straight to RDS (phases 1-2) connect with sslmode=require: no server verification", (T_SECX, T_CRED),
      ("phase1",), k='hosts_ or database_urls'),
    M("boot-verify-full-require", "cloudinit/boot.sh", r'tls = "sslmode=verify-full&', 'tls = "sslmode=require&',
      "app -> RDS TLS downgraded from verify-full to require", (T_SECX, T_CRED), ("phase1",), k='hosts_ or database_urls'),
    M("nginx-no-least-conn", "nginx/load_balancer.conf.j2", r"\n\s*least_conn;", "",
      "nginx LB back to round robin: slow instances pile up requests", (T_SECX, T_APP), (), safety=False,
      k="least_conn"),
    M("pgbouncer-budget-off-by-one", "ladder/config.py", r"if primary_conns >= limit:", "if primary_conns > limit:",
      "connection budget lets PgBouncer take every server slot (none left for the bootstrap, replication, admin)",
      (T_SECX, T_CFG, T_DATA), k='budget'),
    M("lb-into-redis", "ladder/topology.py", r'(Rule\("redis", REDIS, c, f"\{c\} to Redis"\) for c in )clients\]',
      r'\1(*clients, "lb")]',
      "the load balancer's group (internet-facing) is allowed into Redis (and the database in phases 1-2)",
      (T_SECX, T_SEC), ("phase3",), k='internet_facing or data_tier'),
    M("data-tier-egress", "ladder/topology.py", r'outbound = tuple\(t for t in tiers if t not in \("db", "redis"\)\)',
      "outbound = tuple(tiers)", "database and Redis groups get all-protocol egress to 0.0.0.0/0", (T_SECX, T_SEC),
      ("phase3",), k='opens_no_connection or data_tier'),
    M("hpa-max-shrunk", "ladder/phases.py", r'("hpa": \{"minReplicas": \d+, "maxReplicas": )\d+', r"\g<1>3",
      "phase 6 HPA ceiling far below phase 5's capacity (the property test is helper capacity's)",
      ("tests/unit/test_capacity.py", T_P6, T_CFG), (), safety=False),
    # --- network paths -------------------------------------------------------------------
    M("app-from-internet", "ladder/topology.py", r'Rule\("app", HTTP, "lb",', 'Rule("app", HTTP, INTERNET,',
      "app instances open to the internet, bypassing the load balancer", (T_SEC,), ("phase2",)),
    M("db-from-lb", "ladder/topology.py", r'Rule\("db", POSTGRES, "pgbouncer",', 'Rule("db", POSTGRES, "lb",',
      "the load balancer's group reaches PostgreSQL", (T_SECX, T_SEC), ("phase3",)),
    M("nlb-public", "components/pgbouncer.py", r'load_balancer_type="network", internal=True',
      'load_balancer_type="network", internal=False', "PgBouncer's NLB faces the internet", (T_DATA, T_SEC), ("phase3",)),
    M("eks-private-endpoint-off", "components/eks.py", r"endpoint_private_access=True", "endpoint_private_access=False",
      "nodes reach the EKS API over the internet", (T_P6,), ("phase6",)),
    M("eks-hop-limit-2", "components/eks.py", r"http_put_response_hop_limit=\d", "http_put_response_hop_limit=2",
      "every pod can read the node's IAM role through IMDS", (T_SECX, T_P6), ("phase6",), k='keep_pods_off'),
    M("host-hop-limit-2", "components/app_host.py", r"http_put_response_hop_limit=1", "http_put_response_hop_limit=2",
      "app containers can read the instance role through IMDS", (T_SECX, T_APP), ("phase1",), k='ec2_hosts or hop or imds'),
    # --- data tier -------------------------------------------------------------------------
    M("rds-unencrypted", "components/database.py", r"storage_encrypted=True", "storage_encrypted=False",
      "database storage unencrypted at rest", (T_SEC, T_DATA), ("phase1",)),
    M("rds-no-deletion-protection", "components/database.py", r"deletion_protection=True", "deletion_protection=False",
      "the primary can be deleted by one API call", (T_SEC, T_DATA), ("phase1",)),
    M("rds-public", "components/database.py", r"publicly_accessible=False", "publicly_accessible=True",
      "the database gets a public address", (T_SEC, T_DATA), ("phase1",)),
    M("redis-plaintext", "components/cache.py", r"transit_encryption_enabled=True", "transit_encryption_enabled=False",
      "Redis accepts plaintext connections (AUTH token on the wire)", (T_SEC, T_DATA), ("phase1",)),
    M("redis-unprotected", "components/cache.py", r"protect=True, retain_on_delete=True", "retain_on_delete=True",
      "a change that replaces the Redis group deletes the queue", (T_SEC, T_DATA), ("phase1",)),
    M("pgbouncer-server-tls-require", "components/pgbouncer.py", r'(server_tls_sslmode"?(?:=|": ))"verify-full"',
      r'\1"require"', "PgBouncer -> RDS no longer verifies the server", (T_SECX, T_DATA), ("phase3",)),
    M("app-secrets-include-master", "components/identity.py",
      r"APP_SECRETS = \(credentials.SECRET_APP, credentials.SECRET_APP_RO\)",
      "APP_SECRETS = (credentials.SECRET_APP, credentials.SECRET_APP_RO, credentials.SECRET_MASTER)",
      "app hosts may read the master password from phase 3", (T_CRED,), ()),
    M("host-secrets-wildcard", "components/identity.py", r'"Resource": sorted\(secret_arns\)', '"Resource": "*"',
      "host roles may read every secret in the account", (T_SECX, T_CRED), ()),
    # --- edge ------------------------------------------------------------------------------
    M("alb-keeps-invalid-headers", "components/fleet.py", r"drop_invalid_header_fields=True",
      "drop_invalid_header_fields=False", "request smuggling defence off on the ALB", (T_APP,), ("phase2",)),
    M("alb-old-tls", "components/fleet.py", r'ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06"',
      'ssl_policy="ELBSecurityPolicy-2016-08"', "the HTTPS listener accepts TLS 1.0", (T_APP, T_P5), ("phase5",)),
    M("cdn-viewer-http", "components/cdn.py", r'path_pattern=STATIC_PATH, target_origin_id=STATIC_ORIGIN_ID, '
      r'viewer_protocol_policy="redirect-to-https"',
      'path_pattern=STATIC_PATH, target_origin_id=STATIC_ORIGIN_ID, viewer_protocol_policy="allow-all"',
      "static assets served over plain HTTP", (T_P5,), ("phase5",)),
    M("cdn-origin-old-tls", "components/cdn.py", r'origin_ssl_protocols=\["TLSv1.2"\]',
      'origin_ssl_protocols=["TLSv1", "TLSv1.2"]', "CloudFront -> origin accepts TLS 1.0", (T_SECX, T_P5), ("phase5",)),
    M("bucket-policy-public", "components/cdn.py", r"block_public_policy=True", "block_public_policy=False",
      "the bucket accepts a public policy", (T_P5,), ("phase5",)),
    M("bucket-not-retained", "components/cdn.py", r'"static-assets", tags=tagged\(args.tags, role="static-assets"\),\n'
      r"(\s*)opts=self.child\(retain_on_delete=True\)",
      r'"static-assets", tags=tagged(args.tags, role="static-assets"),\n\1opts=self.child()',
      "stepping back 5 -> 4 deletes the static-assets bucket", (T_P5, T_SEC), ("phase5",)),
    # --- pods ------------------------------------------------------------------------------
    M("pod-privilege-escalation", "components/workloads.py", r"allow_privilege_escalation=False",
      "allow_privilege_escalation=True", "containers may gain privileges (setuid)", (T_P6,), ("phase6",)),
    M("pod-root", "components/workloads.py", r"run_as_non_root=True, run_as_user=uid",
      "run_as_non_root=False, run_as_user=uid", "containers may run as root", (T_P6,), ("phase6",)),
    M("pod-writable-root", "components/workloads.py", r"read_only_root_filesystem=True",
      "read_only_root_filesystem=False", "container root filesystems writable", (T_P6, "tests/unit/test_checkov.py"),
      (), safety=False),
    M("pod-url-prefer", "components/workloads.py", r'\?sslmode=require&uselibpqcompat=true"',
      '?sslmode=prefer&uselibpqcompat=true"', "app -> PgBouncer may fall back to plaintext", (T_SECX, T_P6),
      ("phase6",)),
    # --- paths issue 15 closed (n/a before it: the code did not exist) -------------------------
    M("alb-ignores-origin-header", "components/fleet.py",
      r"default_actions=refuse if a.origin_verify is not None else forward", "default_actions=forward",
      "the ALB serves requests without CloudFront's secret header (the CDN can be bypassed)", (T_SECX,), ("phase5",), k='phase5_alb'),
    M("lb-world-in-phase5", "ladder/topology.py", r"if p == 5 else \[", "if p == 0 else [",
      "phase 5's load balancer admits the internet, not only CloudFront", (T_SECX, T_SEC), ("phase5",), k='phase5_alb or phase2_to_4 or edge'),
    M("cdn-origin-http", "components/cdn.py", r'origin_protocol_policy="https-only" if args.origin_https else "http-only"',
      'origin_protocol_policy="http-only"', "CloudFront -> load balancer in plain HTTP (cookies, Authorization)",
      (T_SECX, T_P5), ("phase5",), k='https_with_the_secret or origin'),
    M("netpol-app-to-postgres", "components/workloads.py", r'pod_selector=pods\("pgbouncer", "bootstrap"\)',
      'pod_selector=pods("pgbouncer", "bootstrap", "app")', "app pods may bypass PgBouncer to RDS", (T_SECX,), (), k='postgres_and_redis'),
    M("netpol-not-enforced", "components/eks.py", r'ADDON_CONFIGURATION: dict\[str, dict\[str, str\]\] = \{"vpc-cni": \{"enableNetworkPolicy": "true"\}\}',
      "ADDON_CONFIGURATION: dict[str, dict[str, str]] = {}", "NetworkPolicies exist but nothing enforces them",
      (T_SECX,), (), k='postgres_and_redis'),
    M("lb-host-app-role", "components/phase.py",
      r"lb_instance_profile_name=lb_role.profile.name if lb_role is not None else None,",
      "lb_instance_profile_name=None,", "the internet-facing nginx host can read the database secrets", (T_SECX,), (), k='nginx_lb_host'),
    M("bucket-guards-deleted", "components/cdn.py", r"return self.child\(retain_on_delete=True, \*\*kwargs\)",
      "return self.child(**kwargs)", "a step back 5 -> 4 leaves the retained buckets unblocked", (T_SECX,),
      ("phase5",), k='retained_bucket'),
    M("kubeconfig-ambient-identity", "components/eks.py", r'"--role-arn", role_arn,\s*', "",
      "kubectl and the provider use whatever identity the caller has", (T_SECX,), (), k='admin_is_one_role'),
    M("eks-cidrs-allow-world", "ladder/config.py", r"if net.prefixlen < MIN_PUBLIC_ACCESS_PREFIX:",
      "if net.prefixlen < 0:", "eks.publicAccessCidrs accepts 0.0.0.0/0", (T_SECX, T_CFG), (), k='refuses_open or open_default'),
    M("hpa-min-one", "ladder/config.py", r"if cfg.phase == 6 and hpa.min_replicas < 2:",
      "if cfg.phase == 6 and hpa.min_replicas < 1:", "a one-pod app allowed: every drain is an outage",
      (T_CFG,), (), safety=False),
]


@dataclass
class Result:
    id: str
    safety: bool
    applicable: bool
    killed_by_tests: bool = False
    killed_by_policy: bool = False
    seconds: float = 0.0
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.killed_by_tests or self.killed_by_policy


@dataclass
class Run:
    rev: str
    commit: str
    date: str
    results: list[Result] = field(default_factory=list)


def unpack(rev: str, into: Path) -> str:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.Popen(["git", "-C", str(REPO), "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    archive.wait()
    for venv in REPO.glob(".venv*"):  # the project's and the tools' (.venv-checkov)
        (into / venv.name).symlink_to(venv)
    return commit


def run_one(m: Mutation, root: Path, timeout: int) -> Result:
    path = root / m.file
    if not path.is_file():
        return Result(m.id, m.safety, False, detail=f"{m.file} not in this revision")
    original = path.read_text()
    mutated, count = re.subn(m.old, m.new, original, count=1)
    if count == 0:
        return Result(m.id, m.safety, False, detail="pattern not found in this revision")
    if mutated == original:
        return Result(m.id, m.safety, False, detail="the mistake is already the code at this revision")
    res = Result(m.id, m.safety, True)
    start = time.monotonic()
    py = str(root / ".venv" / "bin" / "python")
    try:
        path.write_text(mutated)
        tests = [t for t in m.tests if (root / t).is_file()]  # in order: -x stops at the first failure
        # A test that fails without the mutation too (someone's work in progress) kills nothing:
        # each failing test is re-run on the unmutated file and, if it fails there, deselected.
        broken: list[str] = []
        while tests:
            proc = subprocess.run([py, "-m", "pytest", "-x", "-q", "--tb=no", "-rfE", "-p", "no:cacheprovider",
                                   "-m", "not integration", *(["-k", m.k] if m.k else []), *tests,
                                   *(f"--deselect={b}" for b in broken)],
                                  cwd=root, capture_output=True, text=True, timeout=timeout)
            if proc.returncode in (0, 5):  # 5: nothing selected
                break
            failed = [line.split()[1] for line in proc.stdout.splitlines()
                      if line.startswith(("FAILED ", "ERROR ")) and "::" in line]
            if not failed or len(broken) >= 5:
                res.killed_by_tests = True
                res.detail = (proc.stdout.strip().splitlines()[-1:] or ["tests failed"])[0][:200]
                break
            path.write_text(original)
            again = subprocess.run([py, "-m", "pytest", "-q", "--tb=no", "-p", "no:cacheprovider", failed[0]],
                                   cwd=root, capture_output=True, text=True, timeout=timeout)
            path.write_text(mutated)
            if again.returncode == 0:
                res.killed_by_tests, res.detail = True, f"FAILED {failed[0]}"[:200]
                break
            broken.append(failed[0])
        if broken:
            res.detail = (res.detail + f" (ignored, failing without the mutation: {', '.join(broken)})")[:400]
        for stack in m.stacks:
            proc = subprocess.run([py, "-m", "ladder", "policy", stack], cwd=root, capture_output=True, text=True,
                                  timeout=timeout)
            if proc.returncode != 0:
                res.killed_by_policy = True
                fails = [line.strip() for line in proc.stdout.splitlines() if "FAIL" in line]
                res.detail = res.detail or (fails[0] if fails else proc.stderr.strip().splitlines()[-1:] or [""])[0][:200]
                break
    except subprocess.TimeoutExpired:
        res.killed_by_tests, res.detail = True, "timed out (counted as killed)"
    finally:
        path.write_text(original)
        res.seconds = round(time.monotonic() - start, 1)
    return res


def _data(run: Run) -> dict:
    return {"rev": run.rev, "commit": run.commit, "date": run.date, "results": [asdict(r) for r in run.results]}


def measure(rev: str, only: list[str], timeout: int, args_json: Path | None = None, jobs: int = 1) -> Run:
    """Each worker mutates its own unpacked copy; results are written as they arrive."""
    todo = [m for m in MUTATIONS if not only or m.id in only]
    with tempfile.TemporaryDirectory(prefix="scaleladder-mut-") as tmp:
        roots = [Path(tmp) / str(n) for n in range(max(1, jobs))]
        commit = ""
        for root in roots:
            root.mkdir()
            commit = unpack(rev, root)
        run = Run(rev, commit, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        free = list(roots)
        lock = threading.Lock()

        def one(m: Mutation) -> None:
            with lock:
                root = free.pop()
            try:
                r = run_one(m, root, timeout)
            finally:
                with lock:
                    free.append(root)
            with lock:
                run.results.append(r)
                run.results.sort(key=lambda x: [k.id for k in MUTATIONS].index(x.id))
                state = "n/a" if not r.applicable else ("killed" if r.killed else "SURVIVED")
                print(f"{m.id:32} {state:9} {r.seconds:6.1f}s {r.detail}", flush=True)
                if args_json is not None:  # keep partial results on disk (a run takes a while)
                    args_json.write_text(json.dumps(_data(run), indent=1))

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(roots)) as pool:
            list(pool.map(one, todo))
    return run


def summary(run: dict) -> tuple[int, int, int, int, int]:
    """(applicable, killed, killed by tests, killed by policy, safety survivors)."""
    res = [r for r in run["results"] if r["applicable"]]
    killed = [r for r in res if r["killed_by_tests"] or r["killed_by_policy"]]
    return (len(res), len(killed), sum(r["killed_by_tests"] for r in res), sum(r["killed_by_policy"] for r in res),
            sum(1 for r in res if r["safety"] and r not in killed))


def report(before: dict, after: dict) -> str:
    lines = [BEGIN, "## Mutation check of the safety net (`scripts/mutate.py`)", "",
             "Realistic one-line mistakes (the list, with the reason for each, is in `scripts/mutate.py`), each applied "
             "to a copy of the repo at a revision; killed when the unit tests that cover it fail or `ladder policy` "
             "reports a mandatory violation. Not timed, not a CI step.", "",
             "| revision | applicable | killed | by tests | by policy | kill rate | safety survivors |",
             "|---|---|---|---|---|---|---|"]
    common = {r["id"] for r in before["results"] if r["applicable"]} & {r["id"] for r in after["results"] if r["applicable"]}
    rows = [("before", before), ("after, the same mutations", {**after, "results": [
        r for r in after["results"] if r["id"] in common]}), ("after, all", after)]
    for label, run in rows:
        n, k, t, p, s = summary(run)
        lines.append(f"| {label}: `{run['commit'][:7]}` ({run['date']}) | {n} | {k} | {t} | {p} | "
                     f"{(100 * k / n if n else 0):.0f} % | {s} |")
    not_run = [r["id"] for r in before["results"] if r["id"] not in {a["id"] for a in after["results"]}]
    if not_run:
        lines += ["", f"Not re-run after (time): {', '.join(f'`{i}`' for i in not_run)}; the 'same mutations' "
                      "row compares only those run in both."]
    lines += ["", "| mutation | safety | before | after |", "|---|---|---|---|"]
    by_id = {r["id"]: r for r in before["results"]}

    def state(r: dict | None) -> str:
        if r is None or not r["applicable"]:
            return "n/a"
        if r["killed_by_tests"] and r["killed_by_policy"]:
            return "killed (tests, policy)"
        return "killed (tests)" if r["killed_by_tests"] else "killed (policy)" if r["killed_by_policy"] else "**survived**"

    for r in after["results"] + [r for r in before["results"] if r["id"] in not_run]:
        after_state = "not re-run" if r["id"] in not_run else state(r)
        lines.append(f"| `{r['id']}` | {'yes' if r['safety'] else 'no'} | {state(by_id.get(r['id']))} | {after_state} |")
    lines += ["", END]
    return "\n".join(lines)


def write_report(text: str) -> None:
    doc = BENCHMARKS.read_text()
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    BENCHMARKS.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="git revision to mutate (default HEAD)")
    ap.add_argument("--only", nargs="*", default=[], help="mutation ids to run")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per command")
    ap.add_argument("--jobs", type=int, default=1, help="mutations run at once (each on its own copy)")
    ap.add_argument("--report", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                    help="write the docs/benchmarks.md section from two --json results")
    ap.add_argument("--list", action="store_true", help="print the mutations")
    args = ap.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.id:32} {m.file:28} {'safety' if m.safety else '':6} {m.why}")
        return 0
    if args.report:
        before, after = (json.loads(p.read_text()) for p in args.report)
        write_report(report(before, after))
        print(f"wrote the mutation section of {BENCHMARKS.relative_to(REPO)}")
        return 0
    run = measure(args.rev, args.only, args.timeout, args.json, args.jobs)
    data = _data(run)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    n, k, t, p, s = summary(data)
    print(f"{run.commit[:7]}: {k}/{n} killed ({t} by tests, {p} by policy); safety survivors: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
