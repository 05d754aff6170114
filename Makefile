# The quickstart is two commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test serve lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/pilotbot db upgrade
	$(BIN)/pilotbot demo
	$(BIN)/pilotbot chat -c status
	$(BIN)/pilotbot chat

serve: $(STAMP)
	$(BIN)/pilotbot serve

test: $(DEV_STAMP)
	bash scripts/test.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy bot storage

bench: $(DEV_STAMP)
	$(BIN)/python bench/status_scale.py
	$(BIN)/python bench/cli_start.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
