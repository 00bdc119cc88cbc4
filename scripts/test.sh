#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, builds,
# checks formatting and lints, then runs every test against real components.
# PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) are expected to be running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test dependencies (apt, Python venv, Node packages)"
scripts/setup-build-deps.sh
scripts/setup-test-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "tests"
cargo test --workspace --locked -- --test-threads=4

step "driver suites: asyncpg's own protocol-heavy tests, directly and through the door"
PORTCULLIS_BIN="$PWD/target/debug/portcullis" compat/run.sh asyncpg --ci

step "README walkthrough"
scripts/walkthrough.sh
