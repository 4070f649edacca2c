#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, shared by every test file of a run (each one creates databases of
# its own on it). From Debian's postgresql package; PostgreSQL refuses to run as root, so as root it runs as the
# `postgres` user the package creates.
#
#   start-postgres.sh start DIR PORT   prints FTPSD_TEST_PG_URL_BASE=postgres://postgres@127.0.0.1:PORT/ once it accepts
#   start-postgres.sh stop DIR         stops it and removes DIR
set -euo pipefail

mode=${1:-}
DIR=$(realpath -m "${2:-}")
[ -n "${2:-}" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
PORT=${3:-55432}

bin=
for v in 16 15 17; do
  [ -x "/usr/lib/postgresql/$v/bin/initdb" ] && { bin=/usr/lib/postgresql/$v/bin; break; }
done
[ -n "$bin" ] || { echo "start-postgres: initdb missing: run scripts/install-test-deps.sh" >&2; exit 1; }

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$mode" in
  start)
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR"
    chmod 0700 "$DIR"
    as_postgres "$bin/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 --no-sync --no-instructions >"$DIR/initdb.log" 2>&1
    # Durability is of no use to a test server that is thrown away: fsync off makes CREATE DATABASE cheap.
    as_postgres "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w -t 30 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null
    echo "FTPSD_TEST_PG_URL_BASE=postgres://postgres@127.0.0.1:$PORT/"
    ;;
  stop)
    [ -d "$DIR/data" ] && as_postgres "$bin/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
