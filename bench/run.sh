#!/usr/bin/env bash
# Builds the benchmark in release mode and prints a Markdown table for BENCHMARKS.md.
# BENCH_SECS sets the length of each measurement (default 3); BENCH_ONLY=tokens|policy|audit
# runs one part, BENCH_AUDIT=crash only the crash level of the audit part.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p portcullis-bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
target/release/portcullis-bench
