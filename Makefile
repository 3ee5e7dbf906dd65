# Two commands do all the set-up on a fresh machine:
#   make demo   - find Python >= 3.12, create .venv, install, run the experiment suite
#   make test   - the same set-up, then the tests
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARTIFACTS ?= artifacts

.PHONY: demo test bench bench-explore venv clean system-packages

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
	$(BIN)/python -m pytest

# Benchmarks compare against a baseline in the same run and record results in
# benchmarks/results/ with the commit they measured.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python benchmarks/service_host.py
	$(BIN)/python benchmarks/harness.py
	$(BIN)/python benchmarks/proxy.py
	$(BIN)/python benchmarks/proxy_reference.py
	$(BIN)/python benchmarks/report.py

# What `chaosagenkit explore` finds in agenkit, and how fast: 3 seeds x 10 minutes (about 30 min).
bench-explore: $(STAMP)
	$(BIN)/python benchmarks/explore.py --seeds 1 2 3 --budget-s 600

clean:
	rm -rf $(VENV) $(ARTIFACTS) .pytest_cache build *.egg-info
