# The README's commands. `make demo` runs the product; `make test` installs everything and tests it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test setup system venv lock lint unit integration services-up services-down bench clean

# Needs only Python: the demo brings its own PostgreSQL (a wheel) and an in-process feed bus.
demo:
	bash scripts/demo.sh $(ARGS)

test: setup
	bash scripts/test.sh

setup: system venv

system:
	bash scripts/setup-system.sh
	bash scripts/setup-timescaledb.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	PYTHON=$(PYTHON) bash scripts/install-python.sh
	touch $@

# Regenerate requirements.lock from pyproject.toml's ranges (newest versions that fit, with hashes).
# Run it after changing a dependency in pyproject.toml, then `make test`, and commit both files.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --quiet \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements.lock

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest tests/unit

services-up: setup
	$(BIN)/ioc services up

services-down: venv
	$(BIN)/ioc services down

clean: services-down
	rm -rf .ioc
