#!/usr/bin/env bash
# Exec API benchmark: one short command per call, as an agent's tool call makes it, side by
# side in one run: a new direct PostgreSQL connection per call, the same through pgbouncer,
# the same through the PostgreSQL door (token as password), and POST /v1/exec (which opens an
# in-memory session into the door per call). BENCH_CONC concurrent callers for BENCH_SECS
# each. Prints Markdown for BENCHMARKS.md.
#
#   bench/exec/run.sh            # BENCH_SECS=10 BENCH_CONC=8
#   BENCH_SYNC=normal ...        # SQLite audit without fsync per commit (what durability costs)
#   BENCH_RECORDING=off ...      # no session recordings (what recording costs)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${BENCH_SECS:-10}
conc=${BENCH_CONC:-8}

. bench/lib.sh
bench_init
bench_postgres
bench_pgbouncer
recording=""
[ "${BENCH_RECORDING:-on}" = off ] && recording=$'[recording]\nenabled = false'
bench_gateway "$recording
$(printf '[[connections]]\nname = "bench"\nkind = "postgres"\nupstream = "127.0.0.1:%s"\ndatabase = "postgres"\nuser = "postgres"\n' "$pg_port")" '@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource);
@id("bench-read")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.transaction", Action::"sql.session"], resource);'
sleep 1

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); $conc callers, ${secs}s per path, SQLite audit synchronous=${BENCH_SYNC:-full}, recording ${BENCH_RECORDING:-on}"
echo
PG_PORT=$pg_port BOUNCER_PORT=$bouncer_port DOOR_PORT=$door_port API_PORT=$api_port TOKEN=$token \
  SECS=$secs CONC=$conc .venv/bin/python bench/exec/calls.py
echo
echo "gateway RSS after the run: $(rss "$gw_pid") KiB"
