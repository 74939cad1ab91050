#!/usr/bin/env bash
# The main job on one machine: a whole hybrid cluster, as a user in a restricted sandbox brings it up.
#   - three worker hosts: network namespaces on the lab bridge, each with its own sshd (workers.sh up 3);
#   - the coordinator: a real gVisor sandbox (Debian's runsc with a 9p root: no overlayfs, no /dev/kmsg,
#     most /proc/sys tunables missing) in a network namespace that drops inbound connections;
#   - inside it, `hybrid up --inventory inventory/lab.yaml`: the control plane in the sandbox, the workers
#     joined over SSH in tunnel mode; then the nodes and up's summary.
# The cluster stays up until Ctrl-C, which runs `hybrid down --uninstall-workers` in the sandbox (nothing
# of hybrid is left on the workers; k3s stopped, every workaround undone), then removes the lab hosts.
#
# k3s: HYBRID_K3S_BINARY if set. Otherwise the k3s stand-in (test/k3s-standin/k3s), a test fixture that
# imitates k3s at hybrid's boundaries, because the release cannot be downloaded on every machine (it
# cannot on the project's build machines); the script says so, and up's summary names it.
# HYBRID_LAB_ONESHOT=1: bring it up, show it, take it down, exit (no waiting for Ctrl-C).
# HYBRID_LAB_DIR: the lab's directory (hosts, key, known_hosts, inventory copy, token, k3s data dir);
# default ~/.local/state/hybrid/lab. A lab claimed there beforehand (workers.sh claim) keeps its subnet.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then echo "cluster.sh: run as root (gVisor and the lab's namespaces need it): sudo $0" >&2; exit 2; fi
command -v runsc >/dev/null || { echo "cluster.sh: runsc is missing: run scripts/setup.sh first" >&2; exit 2; }
[ -d node_modules ] && [ -f native/build/Release/hybrid_interceptor.node ] || { echo "cluster.sh: not built: run scripts/setup.sh (npm ci) first" >&2; exit 2; }

export HYBRID_LAB_DIR=${HYBRID_LAB_DIR:-$HOME/.local/state/hybrid/lab}
lab=$HYBRID_LAB_DIR
binary=${HYBRID_K3S_BINARY:-}
if [ -z "$binary" ]; then
  binary=$repo/test/k3s-standin/k3s
  echo "cluster.sh: HYBRID_K3S_BINARY is not set, so this run uses the k3s STAND-IN ($binary), a test fixture that imitates k3s (pods do not really run); set HYBRID_K3S_BINARY=/path/to/k3s for a real cluster." >&2
fi

# The lab: its hosts and the coordinator's namespace, taken down again however this script ends.
workers() { scripts/lab/workers.sh "$@"; }
trap 'workers down >/dev/null' EXIT
workers up 3
netns=$(workers coordinator)
. "$lab/lab.env" # NET: the lab's subnet

# The inventory as committed, with the chosen binary and the lab's own files and host addresses (a copy:
# the committed file stays as it is); prints the advertised address, which goes on the sandbox's loopback.
advertised=$(node --input-type=module -e '
  import {readFileSync, writeFileSync} from "node:fs"
  import {parseDocument} from "yaml"
  const [from, to, binary, lab, net] = process.argv.slice(1)
  const doc = parseDocument(readFileSync(from, "utf8"))
  doc.setIn(["spec", "k3s", "binary"], binary)
  doc.setIn(["spec", "token", "file"], `${lab}/token`)
  doc.setIn(["spec", "controlPlane", "dataDir"], `${lab}/data`)
  doc.setIn(["spec", "ssh", "identityFile"], `${lab}/ssh/id_ed25519`)
  doc.setIn(["spec", "ssh", "knownHosts"], `${lab}/ssh/known_hosts`)
  doc.getIn(["spec", "workers"]).items.forEach((worker, i) => worker.set("address", `${net}.${11 + i}`))
  writeFileSync(to, String(doc))
  console.log(doc.getIn(["spec", "controlPlane", "advertiseAddress"]))
' inventory/lab.yaml "$lab/lab.yaml" "$binary" "$lab" "$NET")

# Inside the sandbox: every step runs in the background and is waited for, so that the SIGINT runsc
# hands to this script (and to no other process in the sandbox) reaches the step that runs: an `up`
# finishes its steps in flight and cleans up, the wait for Ctrl-C ends; then the down runs to its end.
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
step $hybrid up --inventory "$lab/lab.yaml" --detach || up=\$?
if [ \$up = 0 ] && [ -z "\$stopping" ]; then
  echo
  $hybrid status
  (umask 077 && $hybrid kubeconfig >"$lab/kubeconfig")
  echo
  echo "\$ kubectl get nodes -o wide"
  kubectl --kubeconfig "$lab/kubeconfig" get nodes -o wide
  if [ "\${HYBRID_LAB_ONESHOT:-}" != 1 ] && [ -z "\$stopping" ]; then
    echo
    echo "the control plane runs in gVisor, which takes no inbound connections; the workers reach it"
    echo "through SSH tunnels it opened. Ctrl-C stops it (hybrid down --uninstall-workers)."
    step sleep infinity
  fi
fi
trap '' INT TERM
echo
echo "\$ hybrid down --uninstall-workers"
$hybrid down --uninstall-workers; down=\$?
rm -f "$lab/kubeconfig"
[ \$up = 0 ] || [ -n "\$stopping" ] || exit \$up
exit \$down
SCRIPT

# One SIGINT or SIGTERM here (the terminal's Ctrl-C) is handed once to in-sandbox.sh as a SIGTERM (a
# background job of a script ignores SIGINT), which hands runsc a SIGINT for the script inside; this
# script then waits for the down to end and removes the lab.
scripts/lab/in-sandbox.sh --netns "$netns" --loopback-address "$advertised" --cwd "$repo" -- bash "$lab/run.sh" &
sandbox=$!
stopping=
stop() {
  if [ -z "$stopping" ]; then
    stopping=1
    echo "cluster.sh: stopping the cluster (hybrid down --uninstall-workers runs in the sandbox)" >&2
    kill -TERM "$sandbox" 2>/dev/null || true
  fi
}
trap stop INT TERM
while kill -0 "$sandbox" 2>/dev/null; do wait "$sandbox" || true; done
wait "$sandbox"
