"""`python -m bench` runs every benchmark; `python -m bench pgbouncer lag lb tooling rotation` a subset.

Each benchmark's results replace its own entry in bench/results/latest.json; the page
docs/benchmarks.md is then rewritten from that file, so a partial run keeps the others.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import common, lag, lb, pgbouncer, rotation, tooling

BENCHMARKS = {"pgbouncer": pgbouncer, "lag": lag, "lb": lb, "tooling": tooling, "rotation": rotation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    results = common.load_results()
    results.update(machine=common.machine(), versions=common.versions(), written=common.now())
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        busy_before = common.cpu_busy()
        try:
            results[name] = BENCHMARKS[name].bench()
            results[name]["box_busy_pct"] = [busy_before, common.cpu_busy()]
        except Exception as err:  # report it and go on with the other benchmarks
            print(f"{name} failed: {err!r}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(f"== {name} done in {time.monotonic() - started:.0f} s", flush=True)
        common.save_results(results)
    common.save_results(results)
    common.write_page(results, BENCHMARKS)
    print(f"wrote {common.PAGE.relative_to(common.REPO)} and {common.RESULTS.relative_to(common.REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
