# Two commands do all the set-up on a fresh machine:
#   make demo   - find Python >= 3.12, create .venv, install, run the experiment suite
#   make test   - the same set-up, then the tests
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARTIFACTS ?= artifacts

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.cfg scripts/find-python
	@PYTHON=$$(sh scripts/find-python) || exit 1; \
	echo "using $$PYTHON"; \
	test -x $(BIN)/python || "$$PYTHON" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

demo: $(STAMP)
	$(BIN)/chaosagenkit run experiments/demo.json --journals $(ARTIFACTS)/journals

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(ARTIFACTS) .pytest_cache build *.egg-info
