#!/usr/bin/env bash
# Join wall time (docs/architecture.md, "Benchmarks"): `hybrid up --inventory --detach` with 1, 8 and 16 lab
# workers in tunnel mode and a 70 MiB k3s binary (the k3s stand-in padded to that size), rounds
# interleaved; prints medians, the ratio 16/1 (target <= 2) and, beside it, the floor: OpenSSH's scp of
# the same file to 1 and to 16 hosts at once.
# Usage: scripts/bench/join.sh [ROUNDS] [MIB]   (default 3 rounds, 70 MiB; needs root for the lab)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/join.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/join.js" "${1:-3}" "${2:-70}"
