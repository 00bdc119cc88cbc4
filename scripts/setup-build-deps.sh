#!/usr/bin/env bash
# Installs the system packages the build needs (idempotent, quiet on success): a C compiler
# for aws-lc-sys and libpg_query, and libclang for pg_query's bindgen.
set -euo pipefail
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
installed libclang-dev || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
