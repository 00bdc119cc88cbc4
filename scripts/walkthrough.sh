#!/usr/bin/env bash
# Runs the README's five-minute walkthrough word for word: every ```sh block between the
# walkthrough markers, then the "Use with AutoGen" blocks (the example agent), in one shell,
# against a gateway started the way the README says.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# A fresh state folder, as on a new machine.
rm -rf examples/quickstart/portcullis-data

# The gateway, as `scripts/run.sh` starts it (the build it would run is already done).
bin=${PORTCULLIS_BIN:-target/release/portcullis}
[ -x "$bin" ] || bin=target/debug/portcullis
"$bin" serve --config examples/quickstart/portcullis.toml >"$work/out" 2>"$work/err" &
echo $! >"$work/pid"
for _ in $(seq 100); do
  grep -q listening "$work/out" 2>/dev/null && break
  sleep 0.1
done
grep -q listening "$work/out" || { cat "$work/err"; exit 1; }

# Extract the walkthrough blocks.
awk '/<!-- (walkthrough|autogen):start -->/{on=1} /<!-- (walkthrough|autogen):end -->/{on=0}
     on && /^```sh$/{code=1; next} on && /^```$/{code=0; next} code' README.md >"$work/steps.sh"
# The README puts target/release first on PATH; fall back to the debug build in CI.
export PATH="$PATH:$PWD/target/debug"
( set -x; cd "$PWD" && bash -euo pipefail "$work/steps.sh" ) >"$work/log" 2>&1 || {
  cat "$work/log"; echo "--- gateway log"; cat "$work/err"; exit 1; }
cat "$work/log"
echo "walkthrough: 1 passed, 0 failed"
