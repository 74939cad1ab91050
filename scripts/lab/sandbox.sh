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
# HYBRID_LAB_DIR: where the lab keeps its files (inventory copy, token, k3s data dir); default
# ~/.local/state/hybrid/sandbox-lab.
# HYBRID_LAB_ADDRESS: the sandbox's IPv4 address, which the host reaches it at (runsc gives the sandbox
# a network namespace of its own, behind NAT, with this address on a /24; the host side gets the next
# one); default 192.168.10.2, runsc's own default.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then echo "sandbox.sh: run as root (gVisor needs it): sudo $0" >&2; exit 2; fi
command -v runsc >/dev/null || { echo "sandbox.sh: runsc is missing: run scripts/setup.sh first" >&2; exit 2; }
[ -d node_modules ] && [ -f native/build/Release/hybrid_interceptor.node ] || { echo "sandbox.sh: not built: run scripts/setup.sh (npm ci) first" >&2; exit 2; }

lab=${HYBRID_LAB_DIR:-$HOME/.local/state/hybrid/sandbox-lab}
address=${HYBRID_LAB_ADDRESS:-192.168.10.2}
mkdir -p "$lab"
binary=${HYBRID_K3S_BINARY:-}
if [ -z "$binary" ]; then
  binary=$repo/test/k3s-standin/k3s
  echo "sandbox.sh: HYBRID_K3S_BINARY is not set, so this run uses the k3s STAND-IN ($binary)," >&2
  echo "            a test fixture that imitates k3s; set HYBRID_K3S_BINARY=/path/to/k3s for a real cluster." >&2
fi

# The inventory as committed, with the chosen binary and the lab's own token file and data dir (a copy:
# the committed file stays as it is).
node --input-type=module -e '
  import {readFileSync, writeFileSync} from "node:fs"
  import {parseDocument} from "yaml"
  const [from, to, binary, lab] = process.argv.slice(1)
  const doc = parseDocument(readFileSync(from, "utf8"))
  doc.setIn(["spec", "k3s", "binary"], binary)
  doc.setIn(["spec", "token", "file"], `${lab}/token`)
  doc.setIn(["spec", "controlPlane", "dataDir"], `${lab}/data`)
  writeFileSync(to, String(doc))
' inventory/sandbox.yaml "$lab/sandbox.yaml" "$binary" "$lab"

# Inside the sandbox: every step runs in the background and is waited for, so that the SIGINT runsc
# hands to this script (and to no other process in the sandbox) reaches the step that runs: an `up`
# cleans up and stops, the wait for Ctrl-C ends; then `hybrid down` runs to its end.
hybrid="node $repo/bin/run.js"
cat >"$lab/run.sh" <<SCRIPT
set -u
child= stopping=
trap 'stopping=1; [ -z "\$child" ] || kill -TERM "\$child" 2>/dev/null' INT TERM
step() {
  "\$@" & child=\$!
  while kill -0 "\$child" 2>/dev/null; do wait "\$child"; done
  wait "\$child"; local rc=\$?; child=; return \$rc
}
up=0
step $hybrid up --inventory "$lab/sandbox.yaml" --detach || up=\$?
if [ \$up = 0 ] && [ -z "\$stopping" ]; then
  $hybrid status
  (umask 077 && $hybrid kubeconfig >"$lab/kubeconfig")
  kubectl --kubeconfig "$lab/kubeconfig" get nodes -o wide
  if [ "\${HYBRID_LAB_ONESHOT:-}" != 1 ] && [ -z "\$stopping" ]; then
    echo
    echo "the control plane runs inside gVisor at $address; from the host:"
    echo "  hybrid status"
    echo "  hybrid kubeconfig > sandbox.kubeconfig && kubectl --kubeconfig sandbox.kubeconfig get nodes"
    echo "Ctrl-C stops it (hybrid down)"
    step sleep infinity
  fi
fi
trap '' INT TERM
$hybrid down; down=\$?
rm -f "$lab/kubeconfig"
[ \$up = 0 ] || [ -n "\$stopping" ] || exit \$up
exit \$down
SCRIPT

# runsc and what it starts (its gofer, the sandbox) get a session of their own, out of the terminal's
# process group: a Ctrl-C there would kill the gofer, and the sandbox with it, before hybrid could stop.
# This script takes the terminal's SIGINT (or a SIGTERM) and hands one SIGINT to runsc, which passes it
# to the script in the sandbox. (A non-interactive shell's background job is no process group leader,
# so setsid execs runsc itself: $! is runsc.)
setsid runsc --network=host --ignore-cgroups do -force-overlay=false -quiet -ip "$address" -cwd "$repo" \
  bash "$lab/run.sh" </dev/null &
runsc=$!
stopping=
stop() {
  if [ -z "$stopping" ]; then
    stopping=1
    echo "sandbox.sh: stopping the cluster (hybrid down runs in the sandbox)" >&2
    kill -INT "$runsc" 2>/dev/null || true
  fi
}
trap stop INT TERM
while kill -0 "$runsc" 2>/dev/null; do wait "$runsc" || true; done
wait "$runsc"
