#!/usr/bin/env bash
# Snapshots (docs/architecture.md, "Snapshots and restore"): the time and size of a snapshot of a datastore
# of 10 000 objects (the k3s stand-in's kine sqlite) beside the floor, `sqlite3 .backup` of the same file;
# then restore-to-Ready (`hybrid up --detach` in a new state with the snapshot on a worker) with 3 and 8
# lab workers.
# Usage: scripts/bench/snapshot.sh [OBJECTS]   (default 10000; needs root for the lab, and sqlite3)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/snapshot.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (the floor): run scripts/setup.sh first" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/snapshot.js" "${1:-10000}"
