#!/usr/bin/env bash
# The main job on one machine: `hybrid up --inventory inventory/sandbox.yaml` inside a real gVisor
# sandbox (Debian's runsc with a 9p root: no overlayfs, no /dev/kmsg, most /proc/sys tunables missing),
# as a user inside such a sandbox would run it. It shows the nodes, then keeps the cluster up until
# Ctrl-C, which runs `hybrid down` (k3s stopped, every workaround undone).
#
# k3s: HYBRID_K3S_BINARY if set. Otherwise the k3s stand-in (test/k3s-standin/k3s), a test fixture
# that imitates k3s at hybrid's boundaries, because the release cannot be downloaded on every machine
# (it cannot on the project's build machines); the script says so when it does that.
# HYBRID_LAB_ONESHOT=1: bring it up, show it, take it down, exit (no waiting for Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then echo "sandbox.sh: run as root (gVisor needs it): sudo $0" >&2; exit 2; fi
command -v runsc >/dev/null || { echo "sandbox.sh: runsc is missing: run scripts/setup.sh first" >&2; exit 2; }
[ -d node_modules ] && [ -f native/build/Release/hybrid_interceptor.node ] || { echo "sandbox.sh: not built: run scripts/setup.sh (npm ci) first" >&2; exit 2; }

lab=${HYBRID_LAB_DIR:-$HOME/.local/state/hybrid/sandbox-lab}
mkdir -p "$lab"
binary=${HYBRID_K3S_BINARY:-}
if [ -z "$binary" ]; then
  binary=$repo/test/k3s-standin/k3s
  echo "sandbox.sh: HYBRID_K3S_BINARY is not set, so this run uses the k3s STAND-IN ($binary)," >&2
  echo "            a test fixture that imitates k3s; set HYBRID_K3S_BINARY=/path/to/k3s for a real cluster." >&2
fi

# The inventory as committed, with the chosen binary (a copy: the committed file stays as it is).
node --input-type=module -e '
  import {readFileSync, writeFileSync} from "node:fs"
  import {parseDocument} from "yaml"
  const [from, to, binary] = process.argv.slice(1)
  const doc = parseDocument(readFileSync(from, "utf8"))
  doc.setIn(["spec", "k3s", "binary"], binary)
  writeFileSync(to, String(doc))
' inventory/sandbox.yaml "$lab/sandbox.yaml" "$binary"

hybrid="node $repo/bin/run.js"
cat >"$lab/run.sh" <<SCRIPT
set -u
$hybrid up --inventory "$lab/sandbox.yaml" --detach || exit \$?
$hybrid status
(umask 077 && $hybrid kubeconfig >"$lab/kubeconfig")
kubectl --kubeconfig "$lab/kubeconfig" get nodes -o wide
if [ "\${HYBRID_LAB_ONESHOT:-}" != 1 ]; then
  echo "the control plane runs inside gVisor; Ctrl-C stops it"
  trap : INT TERM
  sleep infinity & wait \$!
fi
$hybrid down
rm -f "$lab/kubeconfig"
SCRIPT
exec runsc --network=host --ignore-cgroups do -force-overlay=false -quiet -cwd "$repo" bash "$lab/run.sh"
