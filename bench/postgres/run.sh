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
idle=${BENCH_IDLE_CONNS:-1000}
# Audit durability ([audit] durability): fsync (the default) or crash (BENCH_DURABILITY=crash).
# BENCH_SYNC=full|normal still sets the SQLite URL's own synchronous, which wins.
export BENCH_DURABILITY=${BENCH_DURABILITY:-fsync}

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
user = "postgres"' '@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource == Connection::"bench");
@id("bench-sql")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.write", Action::"sql.transaction", Action::"sql.session"], resource == Connection::"bench");
@id("no-unbounded-writes")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource) when { !context.sql.has_where };'
sleep 1

run() { # name port db password mode script clients
  local name=$1 port=$2 db=$3 pw=$4 mode=$5 script=$6 c=$7 extra=()
  [ "$script" = select ] && extra=(-S)
  local out
  out=$(PGPASSWORD=$pw "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres "$db" -n "${extra[@]}" \
        -M "$mode" -c "$c" -j 2 -T "$secs" 2>&1) || { echo "$out" >&2; return 1; }
  local tps lat
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  echo "$tps $lat"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); ${secs}s per run; audit durability=$BENCH_DURABILITY${BENCH_SYNC:+, SQLite synchronous=$BENCH_SYNC}"
echo "| workload | mode | clients | direct tps (ms) | Portcullis tps (ms) | pgbouncer tps (ms) | Portcullis/direct | Portcullis/pgbouncer |"
echo "|---|---|---|---|---|---|---|---|"
for script in select tpcb; do
  for mode in simple prepared; do
    for c in $clients; do
      read -r d dl < <(run direct "$pg_port" postgres "" "$mode" "$script" "$c")
      read -r p pl < <(run portcullis "$door_port" bench "$token" "$mode" "$script" "$c")
      read -r b bl < <(run pgbouncer "$bouncer_port" postgres "" "$mode" "$script" "$c")
      printf '| %s | %s | %s | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.2f | %.2f |\n' \
        "$script" "$mode" "$c" "$d" "$dl" "$p" "$pl" "$b" "$bl" \
        "$(awk "BEGIN{print $p/$d}")" "$(awk "BEGIN{print $p/$b}")"
    done
  done
done

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
