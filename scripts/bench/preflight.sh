#!/usr/bin/env bash
# Preflight wall time (docs/architecture.md, "Benchmarks"): `hybrid preflight --inventory` with 1 and with
# 16 lab workers, rounds interleaved in one run; prints medians and the ratio (target: 16 within 1.5x of 1).
# Usage: scripts/bench/preflight.sh [ROUNDS] [WORKERS]   (default 3 rounds, 16 workers; needs root for the lab)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/preflight.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/preflight.js" "${1:-3}" "${2:-16}"
