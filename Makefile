# kalcoint: `make demo` sets up .venv and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

$(BIN)/kalcoint: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m kalcoint.warmup
	touch $(BIN)/kalcoint

setup: $(BIN)/kalcoint

demo: setup
	$(BIN)/kalcoint demo --out demo-output

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_tune.py
	$(BIN)/python benchmarks/bench_parts.py
	$(BIN)/python benchmarks/bench_screen.py --full seed

clean:
	rm -rf $(VENV) demo-output build src/*.egg-info
