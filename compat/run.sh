#!/usr/bin/env bash
# Runs real drivers' own test suites (psycopg 3, asyncpg) directly against PostgreSQL and
# through Portcullis's PostgreSQL door, and prints the comparison. See compat/README.md.
#
#   compat/run.sh [psycopg] [asyncpg] [--ci] [--masking] [--recording]
#                 [--direct-only | --door-only] [--repeat N] [-- PYTEST_ARGS...]
#
# --repeat N runs each suite N times through the same gateway (RSS after each: a leak grows
# from pass to pass, caches do not); the last pass is the one compared.
#
# Exit status: 0 when every test that passes directly passes through the door (apart from
# compat/excluded*.txt) and the gateway survived; 1 otherwise; 2 on a set-up problem.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CACHE=${COMPAT_CACHE:-$HERE/.cache}
VENV=${COMPAT_VENV:-$HERE/.venv}
PY=$VENV/bin/python

PSYCOPG_TAG=${PSYCOPG_TAG:-3.3.4}                     # the newest release tag in the mirror
PSYCOPG_MIRROR=${PSYCOPG_MIRROR:-/work/.mirror/psycopg+psycopg/repo}
ASYNCPG_VERSION=${ASYNCPG_VERSION:-0.32.0}
UP_HOST=${COMPAT_PGHOST:-127.0.0.1}                    # the real server, trust auth for UP_USER
UP_PORT=${COMPAT_PGPORT:-5432}
UP_USER=${COMPAT_PGUSER:-postgres}
# COMPAT_POSTGRES_SETTINGS="pool_size=0 ..." adds [postgres] settings to the gateway's config.
TEST_TIMEOUT=${COMPAT_TIMEOUT:-60}                     # per test (pytest-timeout): a hang fails
SUITE_TIMEOUT=${COMPAT_SUITE_TIMEOUT:-7200}            # per pytest run
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}

# The protocol-heavy modules: what `--ci` runs.
ASYNCPG_CI=(test_connect test_cursor test_copy test_prepare test_transaction test_listeners
  test_cancellation test_execute test_pool test_timeout test_adversity)
PSYCOPG_CI=(test_connection test_connection_async test_cursor test_cursor_async
  test_cursor_server test_cursor_server_async test_copy test_copy_async test_pipeline
  test_pipeline_async test_prepared test_prepared_async test_transaction
  test_transaction_async test_notify test_notify_async test_concurrency
  test_concurrency_async)

say() { printf '%s\n' "$*" >&2; }
die() { say "compat: $*"; exit 2; }

SUITES=() CI=0 MASKING=0 RECORDING=0 DIRECT=1 DOOR=1 EXTRA=() REPEAT=1
while (($#)); do
  case $1 in
    psycopg | asyncpg) SUITES+=("$1") ;;
    all) SUITES+=(psycopg asyncpg) ;;
    --ci) CI=1 ;;
    --masking) MASKING=1 ;;
    --recording) RECORDING=1 ;;
    --repeat) REPEAT=$2; shift ;;
    --direct-only) DOOR=0 ;;
    --door-only) DIRECT=0 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
((${#SUITES[@]})) || { ((CI)) && SUITES=(asyncpg) || SUITES=(psycopg asyncpg); }
MODE=door
((MASKING)) && MODE+=-masking
((RECORDING)) && MODE+=-recording
SEL=full
((CI)) && SEL=ci
((${#EXTRA[@]})) && SEL+=-subset
OUT=$CACHE/results
mkdir -p "$OUT"

# --- Python environment, from PyPI --------------------------------------------------------

psycopg_src() {
  if [[ -n ${PSYCOPG_SRC:-} ]]; then
    [[ -d $PSYCOPG_SRC/tests && -f $PSYCOPG_SRC/psycopg/pyproject.toml ]] ||
      die "PSYCOPG_SRC=$PSYCOPG_SRC is not a psycopg source tree (no tests/ or psycopg/pyproject.toml)"
    echo "$PSYCOPG_SRC"
    return
  fi
  local dir=$CACHE/psycopg-$PSYCOPG_TAG
  if [[ ! -d $dir/tests ]]; then
    [[ -d $PSYCOPG_MIRROR ]] || die "psycopg's tests are not on PyPI; give a source tree:
  git clone --depth 1 --branch $PSYCOPG_TAG https://github.com/psycopg/psycopg /some/where
  PSYCOPG_SRC=/some/where compat/run.sh psycopg"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    git --git-dir="$PSYCOPG_MIRROR" archive "$PSYCOPG_TAG" | tar -x -C "$dir.tmp"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

pyproject_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$1" | head -n 1; }

setup_python() {
  [[ -x $PY ]] || python3 -m venv "$VENV"
  local reqs=(pytest pytest-timeout anyio pproxy) drivers=() fallback=() v=
  if [[ " ${SUITES[*]} " == *" psycopg "* ]]; then
    PSYCOPG_TREE=$(psycopg_src)
    v=$(pyproject_version "$PSYCOPG_TREE/psycopg/pyproject.toml")
    local pv
    pv=$(pyproject_version "$PSYCOPG_TREE/psycopg_pool/pyproject.toml")
    # The release's own binary wheel (it bundles libpq), paired with the tests of that tag.
    drivers+=("psycopg[binary]==$v" "psycopg-pool==$pv")
    fallback=("$PSYCOPG_TREE/psycopg" "$PSYCOPG_TREE/psycopg_pool")
  fi
  if [[ " ${SUITES[*]} " == *" asyncpg "* ]]; then
    reqs+=("asyncpg==$ASYNCPG_VERSION" distro)
  fi
  # The script's own helpers (database reset, readiness, health) talk through psycopg, so
  # it is there even when only asyncpg's suite runs.
  ((${#drivers[@]})) || reqs+=("psycopg[binary]")
  local stamp=$VENV/.compat-reqs want="${reqs[*]} ${drivers[*]}"
  grep -qxF "$want" "$stamp" 2>/dev/null && return 0
  say "compat: installing $want"
  "$PY" -m pip install -q --upgrade pip >&2
  "$PY" -m pip install -q "${reqs[@]}" >&2 || die "pip install failed"
  if ((${#drivers[@]})) && ! "$PY" -m pip install -q "${drivers[@]}" >&2; then
    # A source tree whose version is not on PyPI: the pure-Python package from the tree
    # itself (it loads the system libpq).
    say "compat: psycopg $v is not on PyPI; installing it from $PSYCOPG_TREE"
    "$PY" -m pip install -q "${fallback[@]}" >&2 || die "pip install failed"
  fi
  printf '%s\n' "$want" >>"$stamp"
}

asyncpg_tests() {
  # asyncpg's sdist carries tests/; keep only that folder, so `import asyncpg` finds the
  # installed wheel (with its compiled protocol) rather than the sdist's sources.
  local dir=$CACHE/asyncpg-$ASYNCPG_VERSION
  if [[ ! -d $dir/tests ]]; then
    local dl=$CACHE/download
    mkdir -p "$dl"
    "$PY" -m pip download -q --no-binary :all: --no-deps -d "$dl" "asyncpg==$ASYNCPG_VERSION" >&2
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    tar -xzf "$dl/asyncpg-$ASYNCPG_VERSION.tar.gz" -C "$dir.tmp" --strip-components=1 \
      "asyncpg-$ASYNCPG_VERSION/tests"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

# reset_databases NAME...: drops each database on the real server and creates it again, or
# only drops it when NAME starts with `-`; so the direct and door runs start alike.
reset_databases() {
  "$PY" - "$UP_HOST" "$UP_PORT" "$UP_USER" "$@" <<'EOF'
import sys, psycopg
host, port, user, *dbs = sys.argv[1:]
with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as c:
    for db in dbs:
        c.execute(f'DROP DATABASE IF EXISTS "{db.lstrip("-")}" WITH (FORCE)')
        if not db.startswith("-"):
            c.execute(f'CREATE DATABASE "{db}"')
EOF
}

# --- The gateway --------------------------------------------------------------------------

GW_PID= GW_DIR=
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo gone; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo gone; }

start_gateway() {
  if [[ ! -x $BIN ]]; then
    say "compat: building $BIN"
    (cd "$ROOT" && cargo build --release -p portcullis) >&2
  fi
  GW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/compat-gateway.XXXXXX")
  local args=(--dir "$GW_DIR" --upstream "$UP_HOST:$UP_PORT" --upstream-user "$UP_USER"
    --connections "compat_psycopg,postgres,testdb,asyncpg_intro_test")
  ((MASKING)) && args+=(--masking)
  ((RECORDING)) && args+=(--recording)
  local kv
  for kv in ${COMPAT_POSTGRES_SETTINGS:-}; do args+=(--limit "$kv"); done
  eval "$("$PY" "$HERE/gateway_config.py" "${args[@]}")"
  local cfg=$GW_DIR/portcullis.toml
  "$BIN" --config "$cfg" config check >"$GW_DIR/config-check.txt" 2>&1 ||
    { cat "$GW_DIR/config-check.txt" >&2; die "config check failed"; }
  # Minted before `serve` starts: the first of the two creates the dev issuer's key.
  TOKEN=$("$BIN" --config "$cfg" token mint --subject "$UP_USER" --groups compat --ttl 12h 2>"$GW_DIR/mint.log")
  NO_COLOR=1 "$BIN" --config "$cfg" serve >"$GW_DIR/gateway.log" 2>&1 &
  GW_PID=$!
  DOOR_DSN="host=127.0.0.1 port=$PG_PORT user=$UP_USER password=$TOKEN"
  # Ready when a session through the door answers; then warm up (pools, caches, TLS).
  "$PY" - "$DOOR_DSN" <<'EOF' || { tail -n 30 "$GW_DIR/gateway.log" >&2; die "the gateway did not come up"; }
import sys, time, psycopg
dsn = sys.argv[1]
for i in range(300):
    try:
        psycopg.connect(dsn + " dbname=postgres", connect_timeout=2).close()
        break
    except psycopg.OperationalError as e:
        last = e
        time.sleep(0.1)
else:
    sys.exit(f"no answer from the door: {last}")
for i in range(100):
    with psycopg.connect(dsn + " dbname=postgres", sslmode="disable" if i % 2 else "prefer") as c:
        c.execute("select %s::int, now(), repeat('x', 1000)", [i]).fetchall()
EOF
  GW_RSS0=$(rss_kib)
  say "compat: gateway pid $GW_PID, door 127.0.0.1:$PG_PORT, dir $GW_DIR, RSS after warm-up ${GW_RSS0} KiB"
}

stop_gateway() {
  [[ -n $GW_PID ]] || return 0
  kill -TERM "$GW_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$GW_PID" 2>/dev/null || true
  GW_PID=
}
trap stop_gateway EXIT

# After a suite: the process is alive and a new session still gets an answer (no hang).
gateway_health() {
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    echo "CRASHED: the gateway process is gone; end of its log:"
    tail -n 30 "$GW_DIR/gateway.log"
    return 1
  fi
  if ! timeout 30 "$PY" -c 'import sys, psycopg; psycopg.connect(sys.argv[1] + " dbname=postgres", connect_timeout=20).execute("select 1").fetchone()' "$DOOR_DSN"; then
    echo "HUNG: a new session through the door got no answer within 30 s"
    return 1
  fi
  local panics
  panics=$(grep -c 'panicked' "$GW_DIR/gateway.log" || true)
  ((panics == 0)) || { echo "the gateway log has $panics panic(s)"; return 1; }
}

# --- The suites ---------------------------------------------------------------------------

# run_pytest SUITE direct|door|rerun [NODE-ID...]: runs pytest, writes $OUT/SUITE-TAG.xml
# and .log; `rerun` runs the given tests through the door.
run_pytest() {
  local suite=$1 where=$2 tag
  shift 2
  local ids=("$@") extra=("${EXTRA[@]}")
  case $where in
    direct) tag=direct-$SEL ;;
    door) tag=$MODE-$SEL ;;
    rerun) tag=$MODE-$SEL.rerun extra=() ;;
  esac
  local xml=$OUT/$suite-$tag.xml log=$OUT/$suite-$tag.log
  local t0=$SECONDS rc=0
  local common=(-q -rfE -p no:randomly --timeout "$TEST_TIMEOUT" --junitxml "$xml" -o junit_family=xunit1)
  case $suite in
    psycopg)
      [[ $where == rerun ]] || reset_databases compat_psycopg
      local dsn="host=$UP_HOST port=$UP_PORT user=$UP_USER dbname=compat_psycopg"
      [[ $where == direct ]] || dsn="$DOOR_DSN dbname=compat_psycopg"
      # Without the mypy (typing) and refcount (gc-leak) tests, as the issue counts them.
      local sel=(tests) marks="not mypy and not refcount"
      if ((CI)); then
        sel=("${PSYCOPG_CI[@]/#/tests/}") && sel=("${sel[@]/%/.py}") && marks+=" and not slow"
      fi
      ((${#extra[@]} + ${#ids[@]})) && sel=("${ids[@]}")
      common+=(-m "$marks")
      (cd "$PSYCOPG_TREE" && timeout -k 30 "$SUITE_TIMEOUT" "$PY" -m pytest "${common[@]}" \
        -o cache_dir="$CACHE/pytest-cache-psycopg" --test-dsn "$dsn" "${sel[@]}" "${extra[@]}") \
        >"$log" 2>&1 || rc=$?
      ;;
    asyncpg)
      # asyncpg's tests name `postgres` (and create `testdb`, `asyncpg_intro_test`)
      # themselves, and mix the default database with `postgres` (a table made on one is
      # read on the other), so the default is `postgres` too, as in asyncpg's own CI.
      [[ $where == rerun ]] || reset_databases -testdb -asyncpg_intro_test
      local env=(PGHOST="$UP_HOST" PGPORT="$UP_PORT" PGUSER="$UP_USER" PGDATABASE=postgres)
      [[ $where == direct ]] || env=(PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER="$UP_USER"
        PGDATABASE=postgres PGPASSWORD="$TOKEN")
      local sel=(tests --ignore=tests/test__sourcecode.py)
      ((CI)) && sel=("${ASYNCPG_CI[@]/#/tests/}") && sel=("${sel[@]/%/.py}")
      ((${#extra[@]})) && sel=(--ignore=tests/test__sourcecode.py)
      ((${#ids[@]})) && sel=("${ids[@]}")
      (cd "$ASYNCPG_TREE" && env -u PGPASSWORD -u PGSSLMODE -u PGSERVICE "${env[@]}" \
        timeout -k 30 "$SUITE_TIMEOUT" "$PY" -m pytest "${common[@]}" \
        -o cache_dir="$CACHE/pytest-cache-asyncpg" "${sel[@]}" "${extra[@]}") \
        >"$log" 2>&1 || rc=$?
      ;;
  esac
  local secs=$((SECONDS - t0))
  TIMINGS+=("$suite $where ($tag): $((secs / 60))m$((secs % 60))s, pytest exit $rc, $(tail -n 1 "$log")")
  say "compat: ${TIMINGS[-1]}"
}

setup_python
[[ " ${SUITES[*]} " == *" asyncpg "* ]] && ASYNCPG_TREE=$(asyncpg_tests)
[[ " ${SUITES[*]} " == *" psycopg "* ]] && PSYCOPG_TREE=$(psycopg_src)
TIMINGS=() STATUS=0 REPORT=()
((DOOR)) && start_gateway

for suite in "${SUITES[@]}"; do
  ((DIRECT)) && run_pytest "$suite" direct
  if ((DOOR)); then
    for ((pass = 1; pass < REPEAT; pass++)); do
      run_pytest "$suite" door
      REPORT+=("gateway RSS after $suite, pass $pass of $REPEAT: $(rss_kib) KiB (peak $(hwm_kib) KiB)")
      say "compat: ${REPORT[-1]}"
    done
    run_pytest "$suite" door
    health=$(gateway_health 2>&1) || { STATUS=1; REPORT+=("gateway after $suite: $health"); }
    REPORT+=("gateway RSS after $suite: $(rss_kib) KiB (peak $(hwm_kib) KiB)")
    say "compat: ${REPORT[-1]}"
    excl=(--exclude "$HERE/excluded.txt" --flaky "$HERE/flaky.txt")
    ((MASKING)) && excl+=(--exclude "$HERE/excluded-masking.txt")
    ((RECORDING)) && excl+=(--exclude "$HERE/excluded-recording.txt")
    direct=$OUT/$suite-direct-$SEL.xml subset=()
    if ((${#EXTRA[@]})); then
      # A subset through the door (`-- -k ...`) compares with the full direct run.
      subset=(--only-door-tests)
      [[ -f $direct ]] || direct=$OUT/$suite-direct-${SEL%-subset}.xml
    fi
    cmp=("$PY" "$HERE/compare.py" --suite "$suite" --label "$MODE, $SEL" "${excl[@]}"
      "${subset[@]}" --direct "$direct" --door "$OUT/$suite-$MODE-$SEL.xml")
    # The lost tests run once more through the door, in one pytest run, to tell a flaky or
    # order-dependent failure from a deterministic one (both still count).
    lost=$OUT/$suite-$MODE-$SEL.lost rerun=$OUT/$suite-$MODE-$SEL.rerun.xml
    rm -f "$rerun"
    "${cmp[@]}" --lost-out "$lost" >/dev/null || true
    if [[ -s $lost ]] && (($(wc -l <"$lost") <= 300)); then
      mapfile -t ids <"$lost"
      run_pytest "$suite" rerun "${ids[@]}"
    fi
    out=$("${cmp[@]}" --rerun "$rerun") || STATUS=1
    REPORT+=("$out")
  fi
done

echo
echo "==================== compat summary ===================="
printf '%s\n' "${TIMINGS[@]}"
if ((DOOR)); then
  echo "gateway: $BIN, log $GW_DIR/gateway.log"
  echo "gateway RSS after warm-up: $GW_RSS0 KiB"
fi
printf '%s\n' "${REPORT[@]}"
echo "results: $OUT"
exit "$STATUS"
