#!/usr/bin/env bash
# Installs what the integration tests need, idempotently and quietly (prints only on failure):
#   - Debian packages: PostgreSQL server binaries (initdb, postgres, pgbench), psql, pgbouncer,
#     openssl, Node.js and npm, python3-venv when the python3 on PATH cannot make a venv;
#   - .venv at the repo root with tests/python/requirements.txt: the PostgreSQL clients, real
#     AutoGen and clients/python (portcullis-autogen, editable); re-installed only when the
#     requirements, the package's pyproject.toml or the interpreter change (a stamp file
#     inside .venv records them);
#   - Debian's Chromium (/usr/bin/chromium) and a font for it, for the browser checks;
#   - tests/idp/node_modules and tests/browser/node_modules (npm ci) when missing or older
#     than their package-lock.json.
# Run as root on a fresh machine (apt-get); as another user it only checks the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log=$(mktemp -t portcullis-setup-XXXXXX.log)
trap 'rm -f "$log"' EXIT
fail() {
  echo "setup-test-deps: $*" >&2
  if [ -s "$log" ]; then
    echo "--- output ---" >&2
    tail -n 80 "$log" >&2
  fi
  exit 1
}
run() { "$@" >>"$log" 2>&1 || fail "failed: $*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1; }

# --- Debian packages -----------------------------------------------------------------------
need=()
# initdb/postgres/pgbench come with the server package (postgresql-15 on Debian 12).
if [ -z "$(pg_bin initdb)" ] || [ -z "$(pg_bin postgres)" ] || [ -z "$(pg_bin pgbench)" ]; then
  need+=(postgresql postgresql-contrib)
fi
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
installed pgbouncer || need+=(pgbouncer)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The browser checks drive Debian's own build through playwright-core (which downloads none).
[ -x /usr/bin/chromium ] || need+=(chromium)
installed fonts-liberation || need+=(fonts-liberation)
if ! command -v python3 >/dev/null 2>&1; then
  need+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3-venv)
fi

if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing packages (${need[*]}); run as root to install them"
  export DEBIAN_FRONTEND=noninteractive
  run apt-get update -qq
  run apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- Python virtualenv with the real clients -----------------------------------------------
req=tests/python/requirements.txt
venv=.venv
py=python3
# Debian's python3 needs python3-venv for ensurepip; prefer whichever python3 can make a venv.
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 && [ -x /usr/bin/python3 ]; then
  py=/usr/bin/python3
fi
stamp="$venv/.portcullis-requirements.stamp"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  run "$py" -m venv "$venv"
fi
# The package under clients/python is installed editable: its code is live, but a change of its
# dependencies (pyproject.toml) needs a reinstall, so the stamp covers both files.
want="$(cat "$req" clients/python/pyproject.toml | sha256sum | cut -d' ' -f1) $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
  run "$venv/bin/python" -c 'import psycopg, asyncpg, pytest, autogen_agentchat, autogen_ext.tools.mcp, portcullis_autogen'
  printf '%s\n' "$want" >"$stamp"
fi

# --- Node packages: the test OpenID provider and the browser checks ------------------------
for pkg in tests/idp tests/browser; do
  if [ ! -d "$pkg/node_modules" ] || [ "$pkg/package-lock.json" -nt "$pkg/node_modules" ]; then
    run npm ci --prefix "$root/$pkg" --no-audit --no-fund --loglevel=error
    touch "$pkg/node_modules"
  fi
done
