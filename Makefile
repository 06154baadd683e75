# Two commands do all setup on a fresh clone: `make run` and `make test`.
# They install uv (pinned, from PyPI, into .tools/), then the exact releases in uv.lock into .venv.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced-$(shell cat pyproject.toml uv.lock 2>/dev/null | cksum | cut -d' ' -f1)
# uv uses this machine's Python (never downloads one) and keeps the project's venv in .venv.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint bench lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q 'uv==$(UV_VERSION)'

# --frozen: install exactly what uv.lock says, resolving nothing (`make lint` checks the lock
# still agrees with pyproject.toml; if not: `make lock`)
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@rm -f $(VENV)/.synced-*
	@touch $@

run: $(STAMP)
	$(BIN)/gongnon serve

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(UV) lock --check
	$(BIN)/ruff check .
	$(BIN)/mypy core conversations bots
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/telegram_inbound.py
	$(BIN)/python bench/broadcast.py

# After editing dependencies in pyproject.toml (or use `$(UV) add …`, which locks too).
lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache
