"""Tooling: the offline plan of all six preset stacks (ladder.engine.run each, one fresh
process) vs the floor, a fresh process that only imports pulumi, pulumi_aws and
pulumi_kubernetes; and one run of the whole test suite.

Both sides are timed from outside as the wall time of a fresh `python -c` (interpreter
start included on both), so the ratio says what planning costs beyond loading the SDKs.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

from bench.common import REPO, SHARED, fmt, median, now, ratio, run, table

RUNS = 5
FLOOR = "import pulumi, pulumi_aws, pulumi_kubernetes"
PLAN_ALL = """
import json, time
t0 = time.perf_counter()
from ladder import engine
timings = {"import ladder.engine": time.perf_counter() - t0}
errors = {}
for stack in engine.stack_names():
    t = time.perf_counter()
    try:
        count = len(engine.run(stack).resources)
        timings[stack] = [time.perf_counter() - t, count]
    except Exception as err:  # a broken stack is reported, not fatal
        errors[stack] = f"{type(err).__name__}: {err}"[:300]
print(json.dumps({"timings": timings, "errors": errors}))
"""
SUITE_TIMEOUT = 1200  # seconds


def timed(code: str) -> tuple[float, str, int]:
    start = time.perf_counter()
    done = run([sys.executable, "-c", code], timeout=300, cwd=REPO)
    return time.perf_counter() - start, done.stdout, done.returncode


def bench(runs: int = RUNS) -> dict[str, Any]:
    floor, plans, detail = [], [], []
    for rep in range(runs):  # alternate, so drift hits both sides alike
        floor.append(timed(FLOOR)[0])
        wall, out, code = timed(PLAN_ALL)
        plans.append(wall)
        detail.append(json.loads(out.strip().splitlines()[-1]) if code == 0 and out.strip() else {"errors": {"*": out}})
        print(f"  run {rep + 1}/{runs}: import floor {floor[-1]:.2f} s, plan of all stacks {wall:.2f} s", flush=True)
    timings = [d["timings"] for d in detail if "timings" in d]
    stacks = dict.fromkeys(s for t in timings for s in t if s != "import ladder.engine")
    per_stack = {s: {"seconds": median([t[s][0] for t in timings if s in t]),
                     "resources": next(t[s][1] for t in timings if s in t)} for s in stacks}
    engine_import = median([t["import ladder.engine"] for t in timings])
    print("  test suite: python -m pytest -q -n auto --dist loadfile (make test's command)", flush=True)
    start = time.perf_counter()
    suite = run([sys.executable, "-m", "pytest", "-q", "-n", "auto", "--dist", "loadfile", "-p", "no:cacheprovider"],
                timeout=SUITE_TIMEOUT, cwd=REPO)
    suite_wall = time.perf_counter() - start
    summary = ([line for line in suite.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
               or ["no summary line"])[-1].strip("= ")
    print(f"  test suite: {suite_wall:.0f} s, {summary}", flush=True)
    return {"date": now(), "runs": runs, "floor_s": floor, "plan_all_s": plans,
            "ratio": ratio(median(plans), median(floor)), "engine_import_s": engine_import,
            "per_stack": per_stack, "errors": detail[-1].get("errors", {}),
            "suite": {"wall_s": round(suite_wall, 1), "summary": summary, "returncode": suite.returncode}}


def summary(r: dict[str, Any]) -> list[list[str]]:
    return [["offline plan of all preset stacks / bare SDK import", f"{fmt(r['ratio'], 1)}x "
             f"({fmt(median(r['plan_all_s']), 2)} s / {fmt(median(r['floor_s']), 2)} s)", "-", "context"],
            ["whole test suite, one run", f"{fmt(r['suite']['wall_s'], 0)} s", "-",
             "green" if r["suite"]["returncode"] == 0 else "**not green**"]]


def markdown(r: dict[str, Any]) -> str:
    floor, plans = median(r["floor_s"]), median(r["plan_all_s"])
    n = len(r["per_stack"])
    inside = (r["engine_import_s"] or 0) + sum(v["seconds"] or 0 for v in r["per_stack"].values())
    rest = plans - inside if plans is not None else None
    out = ["## 4. Tooling\n\n",
           f"Run {r['date']}; {r['runs']} alternating runs per side, each a fresh `python -c` timed from "
           f"outside (interpreter start included on both sides); medians. {SHARED} (here the benchmark runs one "
           f"process at a time).\n\n"]
    out.append(table(["what", "wall time (median)", ""], [
        [f"floor: `{FLOOR}`", fmt(floor, 2, " s"), "lazy SDK modules: resource classes load on first use"],
        [f"offline plan of all {n} preset stacks in one process (`engine.run` each)", fmt(plans, 2, " s"),
         f"**{fmt(r['ratio'], 1)}x the floor**"],
        ["of which `import ladder.engine`", fmt(r["engine_import_s"], 2, " s"), ""],
        *[[f"`engine.run('{s}')` ({v['resources']} resources)", fmt(v["seconds"], 2, " s"),
           "first stack pays the SDK submodule imports" if i == 0 else ""]
          for i, (s, v) in enumerate(r["per_stack"].items())],
        ["the rest: interpreter start and exit", fmt(rest, 2, " s"), "wall time minus the lines above"],
    ]))
    if r["errors"]:
        out.append("\n**Stacks that failed to plan** (timed up to the failure): "
                   + "; ".join(f"`{s}`: {e}" for s, e in r["errors"].items()) + "\n")
    s = r["suite"]
    out.append(f"\n**Whole test suite** (`python -m pytest -q`, one run, unit + integration with real servers): "
               f"**{fmt(s['wall_s'], 0, ' s')}** — {s['summary']}"
               f"{'' if s['returncode'] == 0 else ' (**not green**)'} ({SHARED}).\n")
    return "".join(out)
