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

.PHONY: demo test bench venv clean system-packages

venv: $(STAMP)

# System packages the tests and experiments need (Chromium, nftables, ...): installed
# as root when missing, else listed; the tests that need one skip with a reason.
system-packages:
	@sh scripts/install-system-packages

$(STAMP): pyproject.toml setup.cfg scripts/find-python
	@PYTHON=$$(sh scripts/find-python) || exit 1; \
	echo "using $$PYTHON"; \
	test -x $(BIN)/python || "$$PYTHON" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# The whole suite over tcp:// and http://; journals and reports (junit.xml, summary.md,
# report.html) in $(ARTIFACTS)/. Exit 0 when every verdict is the recorded one
# (docs/FINDINGS.md); run `chaosagenkit run experiments` for plain verdicts.
demo: $(STAMP) system-packages
	$(BIN)/chaosagenkit run experiments --journals $(ARTIFACTS)/journals --report $(ARTIFACTS)/reports --against-recorded

test: $(STAMP) system-packages
	$(BIN)/ruff check chaosagenkit tests benchmarks
	$(BIN)/ruff format --check chaosagenkit tests benchmarks
	TOXIPROXY_SERVER="$${TOXIPROXY_SERVER:-$(TOXIPROXY_BESIDE)}" $(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) $(ARTIFACTS) .pytest_cache build *.egg-info
