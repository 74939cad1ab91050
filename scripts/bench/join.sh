#!/usr/bin/env bash
# What joining workers costs the coordinator (docs/architecture.md, "Benchmarks"): `hybrid up --inventory
# --detach` with 0, 1, 8, 16 and 50 lab workers in tunnel mode and a 70 MiB k3s binary (the k3s stand-in padded
# to that size), rounds interleaved. Prints, per size: wall time and the lab's CPU meanwhile, the coordinator's
# CPU (up, its supervisor and their children, less the k3s server; cgroup accounting) per worker beside
# OpenSSH's client doing the same connections, commands and copy (the floor), the supervisor's CPU at rest
# holding the tunnels; then the growth per worker from 8 to 50 and the wall ratio 50/1; and which crypto path
# ssh2 ran and what hybrid and OpenSSH negotiated.
# Usage: scripts/bench/join.sh [ROUNDS] [MIB] [SIZES] [REST]   (default 1 round, 70 MiB, 0,1,8,16,50, 20 s at
# rest; needs root for the lab and the cgroups)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/join.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces, cgroups): sudo $0 $*" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/join.js" "${1:-1}" "${2:-70}" "${3:-0,1,8,16,50}" "${4:-20}"
