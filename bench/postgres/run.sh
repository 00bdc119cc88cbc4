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
root=$PWD
secs=${BENCH_SECS:-15}
clients=${BENCH_CLIENTS:-"8 64"}
idle=${BENCH_IDLE_CONNS:-1000}
# The audit store's SQLite durability: full (fsync per commit) or normal (crash-safe).
sync=${BENCH_SYNC:-full}

scripts/setup-build-deps.sh
scripts/setup-test-deps.sh
cargo build --release --locked -p portcullis >/dev/null 2>&1 || cargo build --release --locked -p portcullis
bin=$root/target/release/portcullis

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
work=$(mktemp -d /tmp/portcullis-bench-XXXXXX)
chown postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); bouncer_port=$(free_port); api_port=$(free_port); door_port=$(free_port)

# --- PostgreSQL -----------------------------------------------------------------------------
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=1200 -c fsync=off -c shared_buffers=256MB" start >/dev/null
"$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1

# --- pgbouncer (session mode; it refuses to run as root) ------------------------------------
cat >"$work/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$pg_port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
auth_type = trust
auth_file = $work/users.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = 1200
logfile = $work/pgbouncer.log
unix_socket_dir =
INI
echo '"postgres" ""' >"$work/users.txt"
chown postgres "$work/pgbouncer.ini" "$work/users.txt"
runuser -u postgres -- pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)

# --- Portcullis -----------------------------------------------------------------------------
mkdir -p "$work/gw/policies"
cat >"$work/gw/portcullis.toml" <<TOML
[server]
listen = "127.0.0.1:$api_port"
state_dir = "data"
[store]
url = "sqlite://data/state.db?synchronous=$sync"
[identity.dev_issuer]
enabled = true
[postgres]
listen = "127.0.0.1:$door_port"
[policy]
files = ["policies/*.cedar"]
[[connections]]
name = "bench"
kind = "postgres"
upstream = "127.0.0.1:$pg_port"
database = "postgres"
user = "postgres"
TOML
cat >"$work/gw/policies/bench.cedar" <<'CEDAR'
@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource == Connection::"bench");
@id("bench-sql")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.write", Action::"sql.transaction", Action::"sql.session"], resource == Connection::"bench");
@id("no-unbounded-writes")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource) when { !context.sql.has_where };
CEDAR
"$bin" serve --config "$work/gw/portcullis.toml" >"$work/gw.out" 2>"$work/gw.err" &
gw_pid=$!; pids+=($gw_pid)
for _ in $(seq 100); do grep -q listening "$work/gw.out" 2>/dev/null && break; sleep 0.1; done
token=$("$bin" token mint --config "$work/gw/portcullis.toml" --subject bench-agent --groups bench --ttl 1h)
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

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); ${secs}s per run; audit store synchronous=$sync"
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
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
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
