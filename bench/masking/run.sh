#!/usr/bin/env bash
# Masking benchmarks, printed as Markdown for BENCHMARKS.md.
#
#   bench/masking/run.sh            # both parts below
#   bench/masking/run.sh door       # the PostgreSQL door only
#   bench/masking/run.sh engine     # the engine only (no PostgreSQL needed)
#
# door: the cost of streaming a large result through the PostgreSQL door with the default
# masking profile, side by side with the same door without masking, a direct connection and
# pgbouncer, interleaved in one run. BENCH_ROWS=1000000 rows, BENCH_REPEAT=3 runs each. The
# result: id, an e-mail address (masked in every row), a phone number (masked), and a
# 40-character clean text column, read by psql with FETCH_COUNT (a cursor, rows streamed).
#
# engine: the masking engine alone on a generated, labelled corpus
# (crates/masking/examples/speed.rs, BENCH_MB=21 MB each of clean and dense text): speed,
# accuracy, worst cases; then Microsoft Presidio's analyzer (pattern recognizers, no NLP
# model) on BENCH_PRESIDIO_MB=1 MB of the same dense corpus in 4 KB chunks, in a venv at
# target/bench-venv (created and filled from PyPI on first use). The corpus and the list of
# accuracy problems (stderr of the example) are kept in BENCH_CORPUS_DIR=target/bench-masking.
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:-all}

door() {
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
}

engine() {
  local dir=${BENCH_CORPUS_DIR:-target/bench-masking} venv=target/bench-venv
  mkdir -p "$dir"
  echo "Masking engine alone, one core (\`cargo run --release -p portcullis-masking --example speed -- --mb ${BENCH_MB:-21}\`):"
  echo
  cargo run -q --release --locked -p portcullis-masking --example speed -- \
    --mb "${BENCH_MB:-21}" --write-corpus "$dir" 2>"$dir/problems.txt"
  echo "Misses, false positives, span and hard-negative problems (first 5 of each): $dir/problems.txt"
  echo

  if ! "$venv/bin/python" -c 'import presidio_analyzer' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q presidio-analyzer
  fi
  local presidio
  presidio=$("$venv/bin/python" bench/masking/presidio.py "$dir" --mb "${BENCH_PRESIDIO_MB:-1}")
  # Both engines' figures, and how many times faster ours is on 4 KB dense chunks.
  "$venv/bin/python" - "$dir" "$presidio" <<'PY'
import json, os, sys
d, presidio_row = sys.argv[1], sys.argv[2]
ours = json.load(open(os.path.join(d, "speed.json")))
theirs = json.load(open(os.path.join(d, "presidio.json")))
print("Against Presidio, dense corpus in 4 KB chunks; precision and recall over the entities both know")
print("(e-mail, card, IBAN, SSN, phone, IPv4/IPv6, NINO, US passport, MAC):")
print()
print("| engine | input | MB/s | precision | recall |")
print("|---|---|---|---|---|")
print(f"| Portcullis masking, `mask_text` | dense, 4 KB chunks ({ours['dense_bytes'] / 1048576:.0f} MB) "
      f"| {ours['dense_4k_mask_text_mb_s']:.2f} | {ours['shared_4k_precision']:.1%} | {ours['shared_4k_recall']:.1%} |")
print(presidio_row)
print()
print(f"Portcullis is {ours['dense_4k_mask_text_mb_s'] / theirs['mb_s']:.0f}× Presidio's throughput on 4 KB dense chunks.")
PY
}

case $part in
  door) door ;;
  engine) engine ;;
  all) door; echo; engine ;;
  *) echo "usage: $0 [door|engine]" >&2; exit 2 ;;
esac
