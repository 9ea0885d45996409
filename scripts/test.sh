#!/usr/bin/env bash
# Run every check: lint, types, unit tests, then integration tests against the real Kafka broker and
# PostgreSQL server that `ioc services up` starts. Services this script started are stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

was_up=0
if $BIN/ioc services status >/dev/null 2>&1; then was_up=1; fi
cleanup() {
    if [ "$was_up" = 0 ]; then $BIN/ioc services down || true; fi
}
trap cleanup EXIT

echo "== lint and types"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy

echo "== services"
$BIN/ioc services up
$BIN/ioc services status

echo "== tests"
$BIN/pytest -ra "$@"
