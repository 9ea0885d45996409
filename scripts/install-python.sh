#!/usr/bin/env bash
# Install the locked Python environment into .venv: every package at the exact version and hash in
# requirements.lock (runtime and dev tools alike), then the project itself, editable, with no further
# resolution. `make lock` regenerates the lock from pyproject.toml's ranges.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# --no-build-isolation: the project builds with the locked setuptools, not whatever is newest today.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
    2> >(grep -v -e BuildBackendWarning -e '^ *!!' -e '^ *\*\*\*' >&2 || true)
