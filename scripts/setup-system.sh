#!/bin/sh
# System packages the real-service tests need on Debian 12: PostgreSQL server (tables step),
# Java 17 + Maven (Kafka broker jars, topic step), Chromium + chromedriver (browser tests), kcat
# (a librdkafka producer for the codec tests).
# Idempotent: installs only what is missing, runs `apt-get update` only then, never prompts.
# TimescaleDB: Debian 12 has no timescaledb package; scripts/setup-timescaledb.sh builds it.
set -eu

missing=""
want() { missing="$missing $1"; }

have_pg_server() {
    for bin in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$bin" ] && [ -x "$(dirname "$bin")/pg_ctl" ] && return 0
    done
    return 1
}

java_major() {
    # `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15 (on stderr)
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

if have_pg_server; then
    echo "setup-system: PostgreSQL server present ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' '))"
else
    want postgresql
fi

if command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ] 2>/dev/null; then
    echo "setup-system: Java $(java_major) present"
else
    want openjdk-17-jre-headless
fi

if command -v mvn >/dev/null 2>&1; then
    echo "setup-system: Maven present"
else
    want maven
fi

if command -v chromium >/dev/null 2>&1; then
    echo "setup-system: Chromium present"
else
    # DejaVu covers Vietnamese diacritics, so screenshots show real text, not boxes.
    want chromium
    want fonts-dejavu-core
fi

if command -v chromedriver >/dev/null 2>&1; then
    echo "setup-system: chromedriver present"
else
    want chromium-driver
fi

if command -v kcat >/dev/null 2>&1; then
    echo "setup-system: kcat present"
else
    # A third-party (librdkafka) producer for the codec tests: what real services send.
    want kcat
fi

if [ -z "$missing" ]; then
    echo "setup-system: nothing to install"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing packages; run as root: apt-get install -y$missing" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: missing packages ($missing) and no apt-get here; install them by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-system: apt-get update"
apt-get update -q </dev/null
echo "setup-system: apt-get install -y$missing"
# shellcheck disable=SC2086 # the package list is meant to split into words
apt-get install -y -q --no-install-recommends $missing </dev/null

# Debian's package creates and starts a cluster of its own on port 5432; the project runs its
# own cluster, so that one is left alone (not started, not removed) beyond what apt did.
if have_pg_server; then
    echo "setup-system: PostgreSQL server binaries present"
else
    echo "setup-system: apt-get finished but no PostgreSQL server binaries were found" >&2
    exit 1
fi
echo "setup-system: installed$missing"
