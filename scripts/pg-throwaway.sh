#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the end-to-end suites (the Rust tests use crates/syncmon-testpg):
#   scripts/pg-throwaway.sh start DIR   → initdb in DIR, a server on a free loopback port, database
#                                         `syncmon`; prints its URL
#   scripts/pg-throwaway.sh stop DIR    → stops the server and removes DIR
# Debian's server binaries (scripts/install-system-deps.sh installs `postgresql`); as root the
# server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?a directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL's server is not installed: run scripts/install-system-deps.sh" >&2; exit 2; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c 'CREATE DATABASE syncmon' >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/syncmon"
    ;;
  stop)
    [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
