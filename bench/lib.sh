# Shared by the benchmark scripts: a throwaway PostgreSQL, pgbouncer and gateway on free
# loopback ports, all stopped on exit. Source it after `cd` to the repo root.
#   bench_init                      build deps, the release gateway, $work, cleanup trap
#   bench_postgres                  initdb + start (fsync off) on $pg_port
#   bench_pgbouncer                 session-mode pgbouncer on $bouncer_port
#   bench_gateway TOML_EXTRA CEDAR  the gateway on $door_port (API $api_port); sets $token
root=$PWD
# BENCH_BIN=PATH runs that gateway binary instead of building this checkout's (e.g. an older
# commit's, for a before/after in one session).
bin=${BENCH_BIN:-$root/target/release/portcullis}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
pids=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
peak_rss() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

bench_init() {
  scripts/setup-build-deps.sh
  scripts/setup-test-deps.sh
  if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --locked -p portcullis >/dev/null 2>&1 || cargo build --release --locked -p portcullis
  fi
  work=$(mktemp -d /tmp/portcullis-bench-XXXXXX)
  chown postgres "$work"
  trap bench_cleanup EXIT
  pg_port=$(free_port); bouncer_port=$(free_port); api_port=$(free_port); door_port=$(free_port)
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}

bench_postgres() {
  runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=1200 -c fsync=off -c shared_buffers=256MB" start >/dev/null
}

bench_pgbouncer() {
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
  # pgbouncer refuses to run as root.
  runuser -u postgres -- pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
  pids+=($!)
}

# $1: TOML appended to the config (connections, masking); $2: the Cedar policies.
bench_gateway() {
  mkdir -p "$work/gw/policies"
  cat >"$work/gw/portcullis.toml" <<TOML
[server]
listen = "127.0.0.1:$api_port"
state_dir = "data"
[store]
url = "sqlite://data/state.db${BENCH_SYNC:+?synchronous=$BENCH_SYNC}"
[audit]
durability = "${BENCH_DURABILITY:-fsync}"
[identity.dev_issuer]
enabled = true
[postgres]
listen = "127.0.0.1:$door_port"
${BENCH_POSTGRES_KEYS:-}
[policy]
files = ["policies/*.cedar"]
$1
TOML
  printf '%s\n' "$2" >"$work/gw/policies/bench.cedar"
  "$bin" serve --config "$work/gw/portcullis.toml" >"$work/gw.out" 2>"$work/gw.err" &
  gw_pid=$!; pids+=($gw_pid)
  for _ in $(seq 100); do grep -q listening "$work/gw.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$work/gw.out" || { cat "$work/gw.err" >&2; return 1; }
  token=$("$bin" token mint --config "$work/gw/portcullis.toml" --subject bench-agent --groups bench --ttl 1h)
}
