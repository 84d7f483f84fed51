"""`python -m bench` runs every benchmark; `python -m bench pgbouncer lag lb tooling` a subset.

Each benchmark's results replace its own entry in bench/results/latest.json; the page
docs/benchmarks.md is then rewritten from that file, so a partial run keeps the others.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import common
from bench import lag, lb, pgbouncer, tooling

BENCHMARKS = {"pgbouncer": pgbouncer, "lag": lag, "lb": lb, "tooling": tooling}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], metavar="NAME",
                        help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    results = common.load_results()
    results.update(machine=common.machine(), versions=common.versions(), written=common.now())
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            results[name] = BENCHMARKS[name].bench()
            results[name]["load_avg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        except Exception as err:  # report it and go on with the other benchmarks
            print(f"{name} failed: {err!r}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(f"== {name} done in {time.monotonic() - started:.0f} s", flush=True)
        common.save_results(results)
    common.save_results(results)
    common.write_page(results, [(n, m.markdown) for n, m in BENCHMARKS.items()])
    print(f"wrote {common.PAGE.relative_to(common.REPO)} and {common.RESULTS.relative_to(common.REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
