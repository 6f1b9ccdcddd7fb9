# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the project from its own files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench accuracy clean browser

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

# Debian's Chromium (the dashboard's browser test) and a Chinese font for its pages.
BROWSER := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
BROWSER_PACKAGES := chromium fonts-wqy-microhei

$(BROWSER) $(CJK_FONT):
	$(APT_GET) install -y --no-install-recommends $(BROWSER_PACKAGES) \
	  || ($(APT_GET) update && $(APT_GET) install -y --no-install-recommends $(BROWSER_PACKAGES))

browser: $(BROWSER) $(CJK_FONT)

test: lint typecheck browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_end_to_end.py

accuracy: $(STAMP)
	$(BIN)/python tests/bench/accuracy.py

clean:
	rm -rf gridhub-demo gridhub-accuracy .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
