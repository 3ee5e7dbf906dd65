# Two commands do all the set-up on a fresh machine:
#   make demo   - find Python >= 3.12, create .venv, install, run the experiment suite
#   make test   - the same set-up, then the tests
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARTIFACTS ?= artifacts
# The real Toxiproxy beside the clone (../shared/toxiproxy, as in CI): the differential
# tests compare our proxy with it; without it (and without TOXIPROXY_SERVER or
# toxiproxy-server on PATH) they skip, saying why.
TOXIPROXY_BESIDE := $(wildcard $(abspath ../shared/toxiproxy/bin/toxiproxy-server))

.PHONY: matrix demo test bench bench-explore venv clean system-packages

venv: $(STAMP)

# System packages the tests and experiments need (Chromium, nftables, ...): installed
# as root when missing, else listed; the tests that need one skip with a reason.
system-packages:
	@sh scripts/install-system-packages

$(STAMP): pyproject.toml setup.cfg setup.py scripts/find-python
	@PYTHON=$$(sh scripts/find-python) || exit 1; \
	echo "using $$PYTHON"; \
	test -x $(BIN)/python || "$$PYTHON" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# The whole suite over every transport it declares; journals and reports (junit.xml,
# summary.md, report.html) in $(ARTIFACTS)/. Exit 0 when every verdict and every set of
# deviations is the recorded one (docs/FINDINGS.md) and no run left anything behind;
# run `chaosagenkit run experiments` for plain verdicts.
demo: $(STAMP) system-packages
	$(BIN)/chaosagenkit run experiments --transport tcp --transport http --journals $(ARTIFACTS)/journals --report $(ARTIFACTS)/reports --against-recorded

# Every experiment over all six agenkit transports (tcp, http, unix, ws, h2c, grpc): about
# 200 runs. Not in CI yet (its time; see README's Transports); verdicts are compared with
# what each experiment records for each transport.
matrix: $(STAMP) system-packages
	$(BIN)/chaosagenkit run experiments --journals $(ARTIFACTS)/matrix --report $(ARTIFACTS)/matrix-reports --against-recorded

# The per-experiment golden master (tests/experiments/test_experiments.py, 48 runs) is
# left out: `make demo` makes the same 48 runs and checks the same (verdict, deviations,
# nothing left behind), so CI (.ci/run: make test, make demo) runs them once. Run it
# alone with `.venv/bin/pytest tests/experiments/test_experiments.py`.
test: $(STAMP) system-packages
	$(BIN)/ruff check chaosagenkit tests benchmarks
	$(BIN)/ruff format --check chaosagenkit tests benchmarks
	$(BIN)/mypy
	TOXIPROXY_SERVER="$${TOXIPROXY_SERVER:-$(TOXIPROXY_BESIDE)}" $(BIN)/python -m pytest -n 2 --dist loadgroup --ignore=tests/experiments/test_experiments.py

# Benchmarks compare against a baseline in the same run and record results in
# benchmarks/results/ with the commit they measured.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python benchmarks/service_host.py
	$(BIN)/python benchmarks/harness.py
	TOXIPROXY_SERVER="$${TOXIPROXY_SERVER:-$(TOXIPROXY_BESIDE)}" $(BIN)/python benchmarks/proxy.py
	$(BIN)/python benchmarks/proxy_reference.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/llm_endpoint.py
	$(BIN)/python benchmarks/kernel.py

# What `chaosagenkit explore` finds in agenkit, and how fast: 3 seeds x 10 minutes (about 30 min).
bench-explore: $(STAMP)
	$(BIN)/python benchmarks/explore.py --seeds 1 2 3 --budget-s 600

clean:
	rm -rf $(VENV) $(ARTIFACTS) .pytest_cache build *.egg-info
