# kalcoint: `make demo` sets up .venv and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast check bench clean browser

$(BIN)/kalcoint: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[test,dev]"  # the newest the caps allow
	$(BIN)/python -m kalcoint.warmup
	touch $(BIN)/kalcoint

setup: $(BIN)/kalcoint

demo: setup
	$(BIN)/kalcoint demo --out demo-output

test: setup browser
	$(BIN)/python -m pytest

# The fast tests on every core (pytest-xdist), one file to a worker so that a file's shared
# fixtures are computed once.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -n auto --dist loadfile

check: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

# Headless Chromium (Debian package) for the report's browser test. Never fails the build: when it
# cannot be installed, the reason goes to .venv/browser-unavailable.txt and that test skips with it.
browser:
	@mkdir -p $(VENV)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		rm -f $(VENV)/browser-unavailable.txt; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "no apt-get on this machine to install chromium" > $(VENV)/browser-unavailable.txt; \
	elif (export DEBIAN_FRONTEND=noninteractive; apt-get install -y --no-install-recommends chromium \
			|| (apt-get update && apt-get install -y --no-install-recommends chromium)) \
			> $(VENV)/browser-install.log 2>&1; then \
		rm -f $(VENV)/browser-unavailable.txt; \
	else \
		echo "apt-get install chromium failed: $$(grep -E '^E:' $(VENV)/browser-install.log | tail -n 1)" \
			> $(VENV)/browser-unavailable.txt; \
	fi; \
	if [ -f $(VENV)/browser-unavailable.txt ]; then \
		echo "browser: $$(cat $(VENV)/browser-unavailable.txt); the browser test will skip"; fi

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m kalcoint.warmup  # compiled kernels on disk before timing (workers would compile their own)
	$(BIN)/python benchmarks/bench_tune.py
	$(BIN)/python benchmarks/bench_parts.py
	$(BIN)/python benchmarks/bench_screen.py --full seed,mle
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_report_baskets.py
	$(BIN)/python benchmarks/bench_commands.py
	$(BIN)/python benchmarks/bench_study.py
	$(BIN)/python benchmarks/bench_study.py etf_2008_2016
	$(BIN)/python benchmarks/bench_book.py --mle
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) demo-output build src/*.egg-info
