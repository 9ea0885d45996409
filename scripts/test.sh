#!/usr/bin/env bash
# Run every check: lint, types, unit tests, then integration tests against the real Kafka broker and
# PostgreSQL server that `ioc services up` starts. Services this script started are stopped at exit.
# A lint or type failure does not hide the test results: everything runs, and any failure fails.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# What proves the plain-PostgreSQL path: migrations, the truth test, the dashboard, redelivery.
PLAIN_TESTS=(
    tests/integration/test_migrations.py
    tests/integration/test_timescaledb.py
    tests/integration/test_ingest_truth.py
    tests/integration/test_dashboard.py
)

was_up=0
if $BIN/ioc services status >/dev/null 2>&1; then was_up=1; fi
cleanup() {
    if [ "$was_up" = 0 ]; then $BIN/ioc services down || true; fi
}
trap cleanup EXIT

failed=()
echo "== lint, types and floors"
$BIN/ruff check . || failed+=("ruff check")
$BIN/ruff format --check . || failed+=("ruff format --check")
$BIN/mypy || failed+=("mypy")
# The floors (pyproject [tool.importlinter]): the core imports nothing above it.
$BIN/lint-imports || failed+=("lint-imports")

echo "== services"
$BIN/ioc services up || { echo "services did not start; see the logs named above"; exit 1; }
$BIN/ioc services status

echo "== tests (database ioc: TimescaleDB when the server has it; the header says which)"
$BIN/pytest -ra "$@" || failed+=("pytest")

# The plain-PostgreSQL path on the same server: database ioc_plain never gets the extension.
echo "== tests on plain PostgreSQL (database ioc_plain)"
IOC_TEST_DATABASE=ioc_plain $BIN/pytest -ra "${PLAIN_TESTS[@]}" || failed+=("pytest (plain PostgreSQL)")

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
