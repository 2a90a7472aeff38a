# Shared by tools/bench.d/{dispatch,latency,workflow100k}. Source after common.sh and pg.sh.
#
#   dispatch_bench_start NAME   builds orchestratord and DispatchBench (release, SCRATCH_PATH; runs
#                               BENCH_ORCHESTRATORD instead when set, to compare two builds),
#                               starts a throwaway PostgreSQL (or uses ORCHESTRATOR_DATABASE_URL)
#                               and orchestratord on free ports; exports BENCH_BIN, BENCH_ADDR,
#                               BENCH_DB_URL, BENCH_OUT (a folder for JSON results).
#   pgbench_tps SECONDS         pgbench with 32 clients on BENCH_DB_URL running the transaction a
#                               claim or completion is compared with (the one tools/bench store
#                               uses: UPDATE one task row + INSERT one event); prints the TPS.

dispatch_bench_start() {
  local name=$1
  local scratch="${SCRATCH_PATH:-$ROOT/.build}"
  log "building orchestratord and DispatchBench (release, scratch path $scratch)"
  swift build -c release --scratch-path "$scratch" --product orchestratord >&2
  swift build -c release --scratch-path "$scratch" --product DispatchBench >&2
  local bin
  bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
  BENCH_BIN="$bin/DispatchBench"
  if [[ -n "${ORCHESTRATOR_DATABASE_URL:-}" ]]; then
    BENCH_DB_URL="$ORCHESTRATOR_DATABASE_URL"
  else
    pg_start "$name"
    BENCH_DB_URL="$PG_URL"
  fi
  local grpc_port admin_port
  read -r grpc_port admin_port <<<"$(free_port 2)"
  BENCH_ADDR="127.0.0.1:$grpc_port"
  BENCH_OUT=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-bench.XXXXXX")
  log "starting orchestratord on $BENCH_ADDR (log: $BENCH_OUT/orchestratord.log)"
  # Big enough for a 100,000-task graph in one SubmitQuery (about 6 MB of protobuf).
  "${BENCH_ORCHESTRATORD:-$bin/orchestratord}" --grpc-address "$BENCH_ADDR" --admin-address "127.0.0.1:$admin_port" \
    --database-url "$BENCH_DB_URL" --log-level warning --max-receive-message-size 268435456 \
    >"$BENCH_OUT/orchestratord.log" 2>&1 &
  BENCH_SERVER_PID=$!
  at_exit _dispatch_bench_stop
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null; do
    tries=$((tries + 1))
    if ((tries > 300)) || ! kill -0 "$BENCH_SERVER_PID" 2>/dev/null; then
      cat "$BENCH_OUT/orchestratord.log" >&2
      echo "orchestratord did not start" >&2
      return 1
    fi
    sleep 0.2
  done
  export BENCH_BIN BENCH_ADDR BENCH_DB_URL BENCH_OUT
}

_dispatch_bench_stop() {
  if [[ -n "${BENCH_SERVER_PID:-}" ]] && kill -0 "$BENCH_SERVER_PID" 2>/dev/null; then
    kill -TERM "$BENCH_SERVER_PID" 2>/dev/null || true
    wait "$BENCH_SERVER_PID" 2>/dev/null || true
  fi
}

pgbench_tps() {
  local seconds=$1
  local psql=("$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$BENCH_DB_URL")
  "${psql[@]}" >/dev/null <<'SQL'
DROP TABLE IF EXISTS pgbench_store_tasks, pgbench_store_events;
CREATE TABLE pgbench_store_tasks (id integer PRIMARY KEY, state text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE pgbench_store_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task_id integer NOT NULL,
                                   type text NOT NULL, at timestamptz NOT NULL);
INSERT INTO pgbench_store_tasks SELECT g, 'ready', now() FROM generate_series(1, 100000) g;
VACUUM ANALYZE pgbench_store_tasks;
SQL
  local script
  script=$(mktemp "${TMPDIR:-/tmp}/dispatch-pgbench.XXXXXX.sql")
  cat >"$script" <<'PGBENCH'
\set id random(1, 100000)
BEGIN;
UPDATE pgbench_store_tasks SET state = 'running', updated_at = now() WHERE id = :id;
INSERT INTO pgbench_store_events (task_id, type, at) VALUES (:id, 'task_running', now());
END;
PGBENCH
  local out tps
  out=$("$PG_BIN/pgbench" -n -c 32 -j 2 -T "$seconds" -f "$script" "$BENCH_DB_URL" 2>&1)
  rm -f "$script"
  "${psql[@]}" -c "DROP TABLE pgbench_store_tasks, pgbench_store_events" >/dev/null
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
  [[ -n "$tps" ]] || { echo "$out" >&2; echo "could not read pgbench's tps" >&2; return 1; }
  awk -v t="$tps" 'BEGIN { printf "%d", t + 0.5 }'
}

# field NAME LINE — the value of NAME=… in a key=value line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# bench_plot JSON... — draws docs/bench/<scenario>.png (matplotlib from .venv; skipped if missing).
bench_plot() {
  local python="$ROOT/.venv/bin/python"
  if [[ -x "$python" ]] && "$python" -c 'import matplotlib' 2>/dev/null; then
    "$python" "$ROOT/tools/bench_plot.py" --out-dir "$ROOT/docs/bench" "$@" >&2
  else
    log "matplotlib not installed (.venv/bin/pip install -r tools/requirements.txt): no plot"
  fi
}
