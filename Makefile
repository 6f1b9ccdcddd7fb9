# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the project from its own files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench accuracy clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gridhub demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

test: lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_end_to_end.py

accuracy: $(STAMP)
	$(BIN)/python tests/bench/accuracy.py

clean:
	rm -rf gridhub-demo gridhub-accuracy .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
