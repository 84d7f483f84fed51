"""scaleladder's benchmarks: what the rendered data plane and the tooling deliver, measured
on this machine. `python -m bench` runs all of them and writes docs/benchmarks.md and
bench/results/latest.json; nothing here is a test, and no figure is asserted."""
