#!/usr/bin/env bash
# SFTP upload throughput (docs/architecture.md, "Benchmarks"): hybrid's upload of a 70 MiB file to a lab
# worker host (connect, sha256 here and there, SFTP, rename) against OpenSSH's scp of the same file to the
# same host, rounds interleaved in one run; prints medians and the ratio (target >= 0.8).
# Usage: scripts/bench/upload.sh [ROUNDS] [MIB]   (default 5 rounds of 70 MiB; needs root for the lab)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/upload.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
command -v scp >/dev/null || { echo "scp is needed (apt-get install openssh-client)" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/upload.js" "${1:-5}" "${2:-70}"
