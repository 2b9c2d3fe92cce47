#!/usr/bin/env bash
# The benchmark of docs/performance.md: the sustained scenario at 500 virtual users in both
# modes, one warm-up of 20 s, then 3 counted runs of 30 s per mode; the report lands in
# reports/<timestamp>-sustained/. Extra options go to `flashsale compare` (e.g. --modes sync,
# --env DB_POOL_SIZE=8). Builds and sets up exactly as scripts/compare.sh does.
set -euo pipefail
exec "$(dirname "$0")/compare.sh" --scenario sustained --vus 500 \
  --warmups 1 --warmup-vus 500 --warmup-duration 20s --runs 3 --duration 30s "$@"
