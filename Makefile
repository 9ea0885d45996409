# The README's commands. `make demo` runs the product; `make test` installs everything and tests it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test setup system venv lint unit integration services-up services-down bench clean

# Needs only Python: the demo brings its own PostgreSQL (a wheel) and an in-process feed bus.
demo:
	bash scripts/demo.sh $(ARGS)

test: setup
	bash scripts/test.sh

setup: system venv

system:
	bash scripts/setup-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit

services-up: setup
	$(BIN)/ioc services up

services-down: venv
	$(BIN)/ioc services down

clean: services-down
	rm -rf .ioc
