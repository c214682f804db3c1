# Two commands for a newcomer: `make demo` and `make test`. Each sets itself up.
# The first interpreter that really runs and is 3.11+ (pyenv shims exist for versions not installed).
ifndef PYTHON
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then command -v $$p; break; fi; done)
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_STAMP := tools/cypher-lint/node_modules/.installed

.PHONY: demo test lint typecheck unit install bench schema clean

$(STAMP): pyproject.toml edge_agent/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Clarion needs Python 3.11 or newer on PATH (python3.11, python3.12 ...)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Clarion needs Python 3.11 or newer, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./edge_agent -e '.[dev]'
	@touch $@

install: $(STAMP)

$(LINT_STAMP): tools/cypher-lint/package.json
	@if command -v npm >/dev/null 2>&1; then cd tools/cypher-lint && npm install --silent --no-audit --no-fund && touch node_modules/.installed; \
	 else echo "npm not found: the Neo4j Cypher lint test will be skipped (install Node.js to run it)"; fi

demo: $(STAMP)
	$(BIN)/clarion demo

lint: $(STAMP)
	$(BIN)/ruff check src edge_agent tests
	$(BIN)/ruff format --check src edge_agent tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(LINT_STAMP) lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit edge_agent/tests -m "not integration and not e2e"

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/ingest.py

schema: $(STAMP)
	$(BIN)/clarion export-schemas

clean:
	rm -rf $(VENV) tools/cypher-lint/node_modules .pytest_cache .mypy_cache .ruff_cache
