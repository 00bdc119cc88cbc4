#!/usr/bin/env bash
# PostgreSQL door benchmark: pgbench against the same server directly, through Portcullis
# (classification, policy and durable audit on) and through pgbouncer (session mode),
# interleaved in one run. Prints Markdown rows for BENCHMARKS.md.
#
#   bench/postgres/run.sh            # BENCH_SECS=15 per run, clients 8 and 64
#
# Starts its own PostgreSQL (initdb, as the postgres user, max_connections 1200) on a free
# port, pgbouncer on another, and the gateway (release build) on a third; everything on
# 127.0.0.1, everything stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${BENCH_SECS:-15}
clients=${BENCH_CLIENTS:-"8 64"}
scripts=${BENCH_SCRIPTS-"select tpcb"}
[ "$scripts" = none ] && scripts=
modes=${BENCH_MODES:-"simple prepared"}
# BENCH_LATENCY=0 skips the one-client latency rows; BENCH_IDLE_CONNS=0 the memory rows;
# BENCH_SCRIPTS= (empty) or none the throughput rows; BENCH_MASKING= (empty) the connection's
# masking profile.
latency=${BENCH_LATENCY:-1}
# pgbouncer here has no TLS, so the clients connect in the clear to all three (BENCH_TLS=1:
# libpq's default, TLS to the gateway when it offers it).
[ "${BENCH_TLS:-0}" = 1 ] || export PGSSLMODE=disable
idle=${BENCH_IDLE_CONNS:-1000}
# Audit durability ([audit] durability): fsync (the default) or crash (BENCH_DURABILITY=crash).
# BENCH_SYNC=full|normal still sets the SQLite URL's own synchronous, which wins.
export BENCH_DURABILITY=${BENCH_DURABILITY:-fsync}

# Room for every client and idle connection of the run (the defaults hold 50 server
# connections per connection and 25 sessions per principal).
export BENCH_POSTGRES_KEYS="max_server_connections = 1100
max_sessions_per_principal = 1100
max_sessions_per_connection = 1100"

. bench/lib.sh
bench_init
bench_postgres
"$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
bench_pgbouncer
bench_gateway '[[connections]]
name = "bench"
kind = "postgres"
upstream = "127.0.0.1:'"$pg_port"'"
database = "postgres"
user = "postgres"
'"${BENCH_MASKING-masking = \"default\"}" '@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource == Connection::"bench");
@id("bench-sql")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.write", Action::"sql.transaction", Action::"sql.session"], resource == Connection::"bench");
@id("no-unbounded-writes")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource) when { !context.sql.has_where };'
sleep 1

# CPU seconds (user + system) the gateway has used so far.
# $1: a pid, the gateway's by default.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/${1:-$gw_pid}/stat"; }
# Context switches (voluntary and not) of all of a process's threads so far.
csw() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
# pgbouncer's own pid (runuser is its parent), for its CPU per statement beside the gateway's.
bouncer_pid=$(pgrep -n -x pgbouncer)

run() { # name port db password mode script clients [extra pgbench args...]
  local name=$1 port=$2 db=$3 pw=$4 mode=$5 script=$6 c=$7 extra=()
  shift 7
  [ "$script" = select ] && extra=(-S)
  local out
  out=$(PGPASSWORD=$pw "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres "$db" -n "${extra[@]}" \
        -M "$mode" -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -T "$secs" "$@" 2>&1) || { echo "$out" >&2; return 1; }
  local tps lat txs
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  txs=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  echo "$tps $lat $txs"
}

# Statements per pgbench transaction: select-only runs one, tpcb-like seven (BEGIN, three
# UPDATEs, a SELECT, an INSERT, END).
per_tx() { [ "$1" = select ] && echo 1 || echo 7; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); ${secs}s per run; audit durability=$BENCH_DURABILITY${BENCH_SYNC:+, SQLite synchronous=$BENCH_SYNC}"
echo "| workload | mode | clients | direct tps (ms) | Portcullis tps (ms) | pgbouncer tps (ms) | Portcullis/direct | Portcullis/pgbouncer | gateway CPU µs/statement | pgbouncer CPU µs/statement | context switches/statement, gateway / pgbouncer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for script in $scripts; do
  for mode in $modes; do
    for c in $clients; do
      read -r d dl _ < <(run direct "$pg_port" postgres "" "$mode" "$script" "$c")
      c0=$(cpu); s0=$(csw "$gw_pid")
      # BENCH_PERF=DIR: a perf profile of the gateway for each of its runs, kept in DIR.
      [ -n "${BENCH_PERF:-}" ] && { mkdir -p "$BENCH_PERF"
        perf record -F ${BENCH_PERF_HZ:-499} --call-graph ${BENCH_PERF_CG:-fp} -p "$gw_pid" -o "$BENCH_PERF/$script-$mode-$c.data" >/dev/null 2>&1 & perf_pid=$!; }
      read -r p pl ptx < <(run portcullis "$door_port" bench "$token" "$mode" "$script" "$c")
      [ -n "${BENCH_PERF:-}" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
      c1=$(cpu); s1=$(csw "$gw_pid")
      b0=$(cpu "$bouncer_pid"); t0=$(csw "$bouncer_pid")
      read -r b bl btx < <(run pgbouncer "$bouncer_port" postgres "" "$mode" "$script" "$c")
      b1=$(cpu "$bouncer_pid"); t1=$(csw "$bouncer_pid")
      printf '| %s | %s | %s | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.2f | %.2f | %.0f | %.0f | %.2f / %.2f |\n' \
        "$script" "$mode" "$c" "$d" "$dl" "$p" "$pl" "$b" "$bl" \
        "$(awk "BEGIN{print $p/$d}")" "$(awk "BEGIN{print $p/$b}")" \
        "$(awk "BEGIN{print ($c1-$c0)*1e6/($ptx*$(per_tx "$script"))}")" \
        "$(awk "BEGIN{print ($b1-$b0)*1e6/($btx*$(per_tx "$script"))}")" \
        "$(awk "BEGIN{print ($s1-$s0)/($ptx*$(per_tx "$script"))}")" \
        "$(awk "BEGIN{print ($t1-$t0)/($btx*$(per_tx "$script"))}")"
    done
  done
done

# --- latency with one client ---------------------------------------------------------------
# pgbench's per-transaction log (--log): the third field is the latency in microseconds.
percentiles() { # log files... -> "p50 p99" in ms
  cat "$@" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END{
    p50=a[int(NR*0.50)>0?int(NR*0.50):1]; p99=a[int(NR*0.99)>0?int(NR*0.99):1];
    printf "%.3f %.3f\n", p50/1000, p99/1000}'
}
latency_run() { # name port db password mode
  local dir="$work/lat-$1-$5"
  mkdir -p "$dir"
  (cd "$dir" && run "$1" "$2" "$3" "$4" "$5" select 1 --log --log-prefix=tx >/dev/null)
  percentiles "$dir"/tx*
}
if [ "$latency" = 1 ]; then
  echo
  echo "| one client, select-only | direct p50 / p99 ms | Portcullis p50 / p99 ms | pgbouncer p50 / p99 ms | Portcullis − pgbouncer p50 / p99 ms |"
  echo "|---|---|---|---|---|"
  for mode in $modes; do
    read -r dp50 dp99 < <(latency_run direct "$pg_port" postgres "" "$mode")
    read -r pp50 pp99 < <(latency_run portcullis "$door_port" bench "$token" "$mode")
    read -r bp50 bp99 < <(latency_run pgbouncer "$bouncer_port" postgres "" "$mode")
    printf '| %s | %s / %s | %s / %s | %s / %s | %.3f / %.3f |\n' "$mode" "$dp50" "$dp99" \
      "$pp50" "$pp99" "$bp50" "$bp99" "$(awk "BEGIN{print $pp50-$bp50}")" "$(awk "BEGIN{print $pp99-$bp99}")"
  done
fi
[ "$idle" = 0 ] && exit 0

# --- memory per idle connection ------------------------------------------------------------
hold() { # port db password
  PGPASSWORD=$3 "$root/.venv/bin/python" - "$1" "$2" "$idle" <<'PY' &
import asyncio, os, sys
port, db, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import asyncpg
async def main():
    conns = []
    for i in range(0, n, 20):
        conns += await asyncio.gather(*[asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
            database=db, password=os.environ.get("PGPASSWORD") or None, ssl=False, timeout=120)
            for _ in range(min(20, n - i))])
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
PY
}
before=$(rss "$gw_pid")
hold "$door_port" bench "$token" >"$work/hold.out"; hp=$!; pids+=($hp)
for _ in $(seq 600); do grep -q ready "$work/hold.out" 2>/dev/null && break; sleep 0.1; done
sleep 2; after=$(rss "$gw_pid"); kill "$hp"
bpid=$(pgrep -u postgres -x pgbouncer | head -n1)
bbefore=$(rss "$bpid")
hold "$bouncer_port" postgres "" >"$work/hold2.out"; hp=$!; pids+=($hp)
for _ in $(seq 600); do grep -q ready "$work/hold2.out" 2>/dev/null && break; sleep 0.1; done
sleep 2; bafter=$(rss "$bpid"); kill "$hp"
echo
echo "| idle connections | Portcullis RSS growth per connection | pgbouncer RSS growth per connection |"
echo "|---|---|---|"
printf '| %s | %.1f KiB | %.1f KiB |\n' "$idle" "$(awk "BEGIN{print ($after-$before)/$idle}")" "$(awk "BEGIN{print ($bafter-$bbefore)/$idle}")"
