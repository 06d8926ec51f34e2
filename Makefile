# Dify Console. `make run`: the console on the bundled simulator. `make test`: the test suite.
# Installs are idempotent: pip runs only when a requirements file is newer than its stamp in .venv/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv install install-dev system-deps run test test-unit lint

venv: $(BIN)/python
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Order-only (|) on the interpreter: only its existence matters, not its timestamp.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

# requirements-dev.txt includes requirements.txt, so this install satisfies both stamps.
$(VENV)/.installed-dev: requirements-dev.txt requirements-locust.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# prometheus, chromium, fonts-thai-tlwg: installed when missing and root, else a warning.
system-deps:
	bash scripts/install_system_deps.sh

# Prometheus is installed when missing and root (the Metrics page reads it); else run_console says how.
run: $(VENV)/.installed
	bash scripts/install_system_deps.sh prometheus
	$(BIN)/python scripts/run_console.py

# Lint and types first: a minute's check before the suite's several.
test: $(VENV)/.installed-dev system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tier: pure functions, parsers, captures replayed through MockTransport. No Debian packages needed.
test-unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# ruff and mypy, configured in pyproject.toml; part of `make test`.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy lib
