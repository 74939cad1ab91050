#!/usr/bin/env bash
# `npx hybrid --version` from the checkout with an empty npm cache, as a newcomer in a sandbox runs it
# (npx installs the checkout into its cache as a directory dependency and runs its `prepare` there),
# side by side with its floor: the same npx with --ignore-scripts (no prepare at all), and with
# `node bin/run.js --version`. Offline: the checkout is all npx needs. Target: at most 10 s; the addon
# file must come out untouched (same inode and mtime).
set -euo pipefail
cd "$(dirname "$0")/../.."
addon=native/build/Release/hybrid_interceptor.node
[ -f "$addon" ] && [ -f oclif.manifest.json ] || { echo "npx-start.sh: build first (npm ci)" >&2; exit 2; }
runs=${RUNS:-5}

median_ms() { # median wall time in ms of "$@" over $runs runs, each with a fresh empty npm cache
  local times=() i start end cache
  for ((i = 0; i < runs; i++)); do
    cache=$(mktemp -d)
    start=$(date +%s%N)
    npm_config_cache=$cache npm_config_offline=true "$@" >/dev/null
    end=$(date +%s%N)
    rm -rf "$cache"
    times+=($(((end - start) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

before=$(stat -c '%i %Y' "$addon")
node_ms=$(median_ms node bin/run.js --version)
floor_ms=$(median_ms npx --ignore-scripts hybrid --version)
npx_ms=$(median_ms npx hybrid --version)
after=$(stat -c '%i %Y' "$addon")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf 'node bin/run.js --version           %6d ms\n' "$node_ms"
printf 'npx --ignore-scripts hybrid --version %4d ms  (floor: npx installing the checkout)\n' "$floor_ms"
printf 'npx hybrid --version                %6d ms  (%sx the floor)\n' "$npx_ms" "$(ratio "$npx_ms" "$floor_ms")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$before" = "$after" ]; then echo "addon untouched ($addon: inode and mtime $after)"; else echo "addon CHANGED: $before -> $after"; fi
if [ "$npx_ms" -le 10000 ]; then echo "target met: npx hybrid --version <= 10 s"; else echo "target MISSED: npx hybrid --version > 10 s"; fi
