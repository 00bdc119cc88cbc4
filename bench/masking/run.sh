#!/usr/bin/env bash
# Masking benchmark: the cost of streaming a large result through the PostgreSQL door with
# the default masking profile, side by side with the same door without masking, a direct
# connection and pgbouncer, interleaved in one run; then the masking engine alone.
# Prints Markdown for BENCHMARKS.md.
#
#   bench/masking/run.sh             # BENCH_ROWS=1000000 rows, BENCH_REPEAT=3 runs each
#
# The result: id, an e-mail address (masked in every row), a phone number (masked), and a
# 40-character clean text column, read by psql with FETCH_COUNT (a cursor, rows streamed).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${BENCH_ROWS:-1000000}
repeat=${BENCH_REPEAT:-3}

. bench/lib.sh
bench_init
bench_postgres
bench_pgbouncer
conn() { # name masking
  printf '[[connections]]\nname = "%s"\nkind = "postgres"\nupstream = "127.0.0.1:%s"\ndatabase = "postgres"\nuser = "postgres"\n%s\n' \
    "$1" "$pg_port" "$2"
}
bench_gateway "$(conn clear ''; conn masked 'masking = "default"')" '@id("bench-connect")
permit (principal in Group::"bench", action == Action::"connect", resource);
@id("bench-read")
permit (principal in Group::"bench", action in [Action::"sql.read", Action::"sql.transaction", Action::"sql.session"], resource);'
sleep 1

sql="SELECT g AS id, 'user' || g || '@example.com' AS email, '+1 415 555 ' || lpad((g % 10000)::text, 4, '0') AS phone, repeat('lorem ipsum ', 3) || g AS note FROM generate_series(1, $rows) AS g"
run() { # port db password -> seconds
  local start end
  start=$(date +%s.%N)
  PGPASSWORD=$3 "$pgbin/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d "$2" -o /dev/null \
    -v ON_ERROR_STOP=1 -c '\set FETCH_COUNT 10000' -c "$sql"
  end=$(date +%s.%N)
  awk "BEGIN{print $end - $start}"
}
best() { # port db password: the fastest of $repeat runs
  local b=999999 t
  for _ in $(seq "$repeat"); do
    t=$(run "$@"); b=$(awk "BEGIN{print ($t < $b) ? $t : $b}")
  done
  echo "$b"
}
# Check the masked door masks before timing it.
sample=$(PGPASSWORD=$token "$pgbin/psql" -X -At -h 127.0.0.1 -p "$door_port" -U postgres -d masked -c "${sql/$rows/1}")
case $sample in *"[EMAIL]"*"[PHONE]"*) ;; *) echo "masking is not on: $sample" >&2; exit 1 ;; esac

d=$(best "$pg_port" postgres "")
b=$(best "$bouncer_port" postgres "")
c=$(best "$door_port" clear "$token")
before=$(peak_rss "$gw_pid")
m=$(best "$door_port" masked "$token")
after=$(peak_rss "$gw_pid")
mb=$(awk "BEGIN{print $rows * 70 / 1048576}")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); $rows rows (~${mb} MB), best of $repeat"
echo
echo "| path | seconds | rows/s | vs direct |"
echo "|---|---|---|---|"
for row in "direct $d" "pgbouncer $b" "Portcullis, no masking $c" "Portcullis, default profile $m"; do
  name=${row% *}; t=${row##* }
  printf '| %s | %.2f | %.0f | %.2f |\n' "$name" "$t" "$(awk "BEGIN{print $rows/$t}")" "$(awk "BEGIN{print $d/$t}")"
done
echo
echo "Gateway peak RSS while masking: $before KiB before, $after KiB after."
echo
echo "Masking engine alone (\`cargo run --release -p portcullis-masking --example throughput\`):"
echo
cargo run -q --release --locked -p portcullis-masking --example throughput
