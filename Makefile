# postdesk: `make run` starts the service with the example config; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.yaml

.PHONY: run test lint bench clean venv

$(BIN)/postdesk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

venv: $(BIN)/postdesk

run: venv
	$(BIN)/postdesk --config $(CONFIG) init
	$(BIN)/postdesk --config $(CONFIG) serve

test: venv
	$(BIN)/ruff check gateway storage tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/check-layers --strict --summary
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check gateway storage tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/check-layers --strict --summary

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
