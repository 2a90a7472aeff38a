# A throwaway PostgreSQL 15 cluster for tests and local runs. Source after common.sh.
#
#   pg_start [NAME]   initdb + pg_ctl start in a fresh temp folder, on a free port, with the unix
#                     socket in that folder; exports PG_URL (database NAME, default
#                     orchestrator_test) and registers pg_stop with at_exit.
#   pg_stop           stops the cluster and deletes the folder (idempotent).
#
# PG_DURABLE=1 keeps PostgreSQL's durability settings (fsync, synchronous_commit and
# full_page_writes on, as in production); by default they are off, for speed.
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user
# (created by Debian's postgresql package); otherwise it belongs to the current user.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=""
PG_PORT=""
PG_URL=""

_pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local database=${1:-orchestrator_test}
  [[ -x "$PG_BIN/initdb" ]] || { log "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql)"; return 1; }
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/orchestrator-pg.XXXXXX")
  at_exit pg_stop
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$PG_DIR"
  fi
  PG_PORT=$(free_port)
  log "starting throwaway PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"
  _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # fsync off: the cluster is thrown away, and tests should not wait on the disk.
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [[ "${PG_DURABLE:-0}" == 1 ]] && durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  # 400 connections: `swift test` runs its suites in parallel, each with a database and a pool of
  # its own, and once passed 200 ("too many clients already" in a pool test).
  _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 $durability -c max_connections=400 -c autovacuum_naptime=10s" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  _pg_as_owner "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$database\"" >/dev/null
  PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/$database"
  export PG_URL PG_PORT PG_DIR
}

pg_stop() {
  [[ -n "$PG_DIR" && -d "$PG_DIR" ]] || return 0
  if [[ -f "$PG_DIR/data/postmaster.pid" ]]; then
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
  PG_DIR=""
}
