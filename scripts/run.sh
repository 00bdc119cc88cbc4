#!/usr/bin/env bash
# Runs the gateway on a fresh machine with the embedded defaults of examples/quickstart/:
# SQLite state, local files, the embedded dev issuer. Installs what the build needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-build-deps.sh
cargo build --release --locked -p portcullis
exec target/release/portcullis serve --config examples/quickstart/portcullis.toml "$@"
