#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, builds,
# checks formatting and lints, then runs every test against real components.
# PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) are expected to be running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "system packages"
need=()
command -v node >/dev/null || need+=(nodejs npm)
command -v psql >/dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

step "node packages for the test OpenID provider"
if [ ! -d tests/idp/node_modules ] || [ tests/idp/package-lock.json -nt tests/idp/node_modules ]; then
  npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "tests"
cargo test --workspace --locked -- --test-threads=4

step "README walkthrough"
scripts/walkthrough.sh
