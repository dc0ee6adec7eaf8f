# The two commands of the README: `make demo` (set up + run the main job) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest marker expression for `make test`; CI runs everything that needs no GPU or MongoDB.
MARKERS ?= not gpu and not mongo

.PHONY: setup test lint demo

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: on CPU machines 2.13.0 is a local CPU wheel (GPU nodes bring their own).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(BIN)/ruff check .
	$(BIN)/python tools/gen_protos.py --check

test: lint
	$(BIN)/python -m pytest -m "$(MARKERS)" --durations=25

demo: setup
	$(BIN)/genesys demo
