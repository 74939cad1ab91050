#!/usr/bin/env bash
# API tunnel throughput and connection setup (docs/architecture.md, "Tunnels" and "Benchmarks"): a client
# inside a lab worker fetches from a server on this machine through hybrid's tunnel, through OpenSSH's
# `ssh -N -R` to the same worker (with its own cipher, and with ssh2's), and straight over the lab's bridge (the
# floor: no tunnel at all), rounds interleaved in one run (the tunnels take turns on the one port the drop-in
# permits; each tunnel and the server run in processes of their own); prints medians, each tunnel process's CPU
# per MiB, the ciphers, and the ratios (targets: throughput >= 0.9 of OpenSSH, connection rate >= 0.8).
# Usage: scripts/bench/tunnel.sh [ROUNDS] [MIB] [CONNECTIONS]   (default 5 rounds, 64 MiB, 100 connections; root)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/dist/scripts/bench/tunnel.js" ] || { echo "build hybrid first: npm run build:ts" >&2; exit 1; }
[ "$EUID" -eq 0 ] || { echo "the lab needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
command -v ssh >/dev/null || { echo "ssh is needed (apt-get install openssh-client)" >&2; exit 1; }
exec node "$REPO/dist/scripts/bench/tunnel.js" "${1:-5}" "${2:-64}" "${3:-100}"
