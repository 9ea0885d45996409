#!/usr/bin/env bash
# TimescaleDB for the project's PostgreSQL server, built from the vendored upstream source release
# (Debian 12 has no package). Idempotent: nothing happens when the server already has this version;
# the build tree is cached under ~/.cache/ioc/timescaledb/<version>-pg<major>, so a second machine
# set-up with the same cache only runs `make install`. Without the tarball (a user's machine) it says
# in one line where to get TimescaleDB and carries on: the schema works on plain PostgreSQL too.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.28.3
SHA256=ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb
TARBALL="${IOC_TIMESCALEDB_TARBALL:-$(pwd)/../shared/vendor/timescaledb-$VERSION.tar.gz}"
say() { echo "setup-timescaledb: $*"; }

pg_config=$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1 || true)
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$bindir" ] || { say "no PostgreSQL server found; run scripts/setup-system.sh first" >&2; exit 1; }
major=$(basename "$(dirname "$bindir")")
if [ -f "/usr/share/postgresql/$major/extension/timescaledb--$VERSION.sql" ] \
    && [ -f "/usr/lib/postgresql/$major/lib/timescaledb-$VERSION.so" ]; then
    say "TimescaleDB $VERSION present for PostgreSQL $major"
    exit 0
fi
if [ ! -f "$TARBALL" ]; then
    say "no TimescaleDB source at $TARBALL: using plain PostgreSQL $major. For TimescaleDB install" \
        "timescaledb-2-postgresql-$major from Timescale's packages (https://docs.timescale.com/self-hosted/latest/install/)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "installing TimescaleDB into PostgreSQL $major needs root; run: sudo bash $0" >&2
    exit 1
fi

need=""
[ -n "$pg_config" ] || need="$need postgresql-server-dev-$major"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v cc >/dev/null 2>&1 || need="$need gcc make"
dpkg -s libssl-dev >/dev/null 2>&1 || need="$need libssl-dev"
if [ -n "$need" ]; then
    say "apt-get install -y$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >/dev/null
    # shellcheck disable=SC2086 # the package list is meant to split into words
    apt-get install -y -q --no-install-recommends $need </dev/null >/dev/null
    pg_config=$(ls -d /usr/lib/postgresql/"$major"/bin/pg_config)
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/ioc/timescaledb/$VERSION-pg$major"
src="$cache/timescaledb-$VERSION"
if [ ! -f "$cache/.built" ]; then
    echo "$SHA256  $TARBALL" | sha256sum --check --quiet \
        || { say "$TARBALL does not have the expected sha256 $SHA256" >&2; exit 1; }
    rm -rf "$cache" && mkdir -p "$cache"
    tar xzf "$TARBALL" -C "$cache"
    say "building TimescaleDB $VERSION for PostgreSQL $major in $cache (about 2 minutes on 2 cores)"
    started=$(date +%s)
    (cd "$src" && ./bootstrap -DPG_CONFIG="$pg_config" -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DCMAKE_BUILD_TYPE=Release -DUSE_TELEMETRY=OFF \
        -DGENERATE_DOWNGRADE_SCRIPT=OFF >"$cache/bootstrap.log" 2>&1) \
        || { say "bootstrap failed; see $cache/bootstrap.log" >&2; exit 1; }
    make -C "$src/build" -j"$(nproc)" >"$cache/build.log" 2>&1 \
        || { say "build failed; see $cache/build.log" >&2; exit 1; }
    touch "$cache/.built"
    say "built in $(($(date +%s) - started)) s"
fi
make -C "$src/build" install >"$cache/install.log" 2>&1 \
    || { say "make install failed; see $cache/install.log" >&2; exit 1; }
say "TimescaleDB $VERSION installed for PostgreSQL $major (ioc services up preloads it)"
