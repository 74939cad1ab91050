#!/usr/bin/env bash
# CLI start-up: wall time of `hybrid --version` against `node -e 0` (the floor any Node CLI pays),
# measured side by side in one run. Target: hybrid --version under 0.5 s on the project's machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d dist/src ] || npm run build:ts >/dev/null
runs=${RUNS:-20}

median_ms() { # median wall time in ms of "$@" over $runs runs
  local times=() i start end
  for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    times+=($(((end - start) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

node_ms=$(median_ms node -e 0)
version_ms=$(median_ms node bin/run.js --version)
help_ms=$(median_ms node bin/run.js --help)
printf 'node -e 0            %5d ms\n' "$node_ms"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf 'hybrid --version     %5d ms  (%sx node)\n' "$version_ms" "$(ratio "$version_ms" "$node_ms")"
printf 'hybrid --help        %5d ms  (%sx node)\n' "$help_ms" "$(ratio "$help_ms" "$node_ms")"
if [ "$version_ms" -lt 500 ]; then echo "target met: hybrid --version < 500 ms"; else echo "target MISSED: hybrid --version >= 500 ms"; fi
