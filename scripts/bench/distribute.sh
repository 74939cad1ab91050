#!/usr/bin/env bash
# Bytes the coordinator sends per worker (docs/architecture.md, "Distributing the k3s binary"): `hybrid up
# --detach` joining N lab workers with spec.k3s.distribute coordinator, peers and worker-download, a MIB MiB
# k3s binary (the k3s stand-in padded to that size), counted by an iptables rule in each lab host; prints
# per-worker mean, max, min and total beside the binary's size.
# Usage: scripts/bench/distribute.sh [WORKERS] [MIB]   (default 8 workers, 70 MiB; needs root for the lab)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/distribute.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
command -v iptables >/dev/null || { echo "iptables is needed to count bytes (apt-get install iptables)" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/distribute.js" "${1:-8}" "${2:-70}"
