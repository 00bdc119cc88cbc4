#!/usr/bin/env bash
# The cost of row limits (`@max_rows`) on a TPC-B-like run: pgbench's tpcb script directly,
# through Portcullis on a connection whose write permit has no bound, and through the same
# gateway on a connection whose write permit has `@max_rows("10")` (every UPDATE and INSERT
# of the script changes one row, so all run and every count is checked). Interleaved in one
# run; prints Markdown rows for BENCHMARKS.md.
#
#   bench/postgres/row_limits.sh     # BENCH_SECS=10 per run, clients 8 and 32
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${BENCH_SECS:-10}
clients=${BENCH_CLIENTS:-"8 32"}
export BENCH_SYNC=${BENCH_SYNC:-full}

. bench/lib.sh
bench_init
bench_postgres
"$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
bench_gateway '[[connections]]
name = "bench"
kind = "postgres"
upstream = "127.0.0.1:'"$pg_port"'"
database = "postgres"
user = "postgres"
[[connections]]
name = "bounded"
kind = "postgres"
upstream = "127.0.0.1:'"$pg_port"'"
database = "postgres"
user = "postgres"' '@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource is Connection);
@id("bench-sql")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.transaction", Action::"sql.session"], resource is Connection);
@id("bench-write")
permit (principal in Group::"bench", action in Action::"sql.write", resource == Connection::"bench");
@id("bounded-write")
@max_rows("10")
permit (principal in Group::"bench", action in Action::"sql.write", resource == Connection::"bounded");
@id("no-unbounded-writes")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource) when { !context.sql.has_where };'
sleep 1

run() { # port db password mode clients [script args]
  local port=$1 db=$2 pw=$3 mode=$4 c=$5 out tps lat
  shift 5
  out=$(PGPASSWORD=$pw "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres "$db" -n "$@" \
        -M "$mode" -c "$c" -j 2 -T "$secs" 2>&1) || { echo "$out" >&2; return 1; }
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  echo "$tps $lat"
}

# The tpcb script without its transaction block: each write runs in the gateway's own
# BEGIN/COMMIT (two more round trips) when bounded.
cat >"$work/autocommit.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
SQL
chmod a+r "$work/autocommit.sql"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); ${secs}s per run; audit store synchronous=$BENCH_SYNC"
echo "| workload | mode | clients | direct tps (ms) | Portcullis tps (ms) | Portcullis + @max_rows tps (ms) | bounded/unbounded | bounded/direct |"
echo "|---|---|---|---|---|---|---|---|"
for workload in tpcb autocommit; do
  if [ "$workload" = tpcb ]; then args=(-b tpcb-like); else args=(-f "$work/autocommit.sql"); fi
  for mode in simple prepared; do
    for c in $clients; do
      read -r d dl < <(run "$pg_port" postgres "" "$mode" "$c" "${args[@]}")
      read -r p pl < <(run "$door_port" bench "$token" "$mode" "$c" "${args[@]}")
      read -r b bl < <(run "$door_port" bounded "$token" "$mode" "$c" "${args[@]}")
      printf '| %s | %s | %s | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.2f | %.2f |\n' \
        "$workload" "$mode" "$c" "$d" "$dl" "$p" "$pl" "$b" "$bl" \
        "$(awk "BEGIN{print $b/$p}")" "$(awk "BEGIN{print $b/$d}")"
    done
  done
done
