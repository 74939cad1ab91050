import {HybridError} from '../errors.js'
import type {Host} from '../remote/host.js'

/**
 * What k3s's own `k3s-killall.sh` and `k3s-agent-uninstall.sh` do on a worker once the agent's service is
 * stopped, for what a k3s agent makes while it runs (docs/architecture.md, "Joining and leaving"). Stopping
 * the service is not enough: its containers are re-parented to their containerd shims and outlive it
 * (KillMode=process), their mounts, network namespaces, links and iptables rules stay, and a CNI bridge left
 * with the old range's gateway makes the next join's pods fail ("cni0 already has an IP address different
 * from …"). Every path, link and chain named here is k3s's by definition (its scripts remove them).
 */

/** Directories the agent uninstall script removes whole besides the recorded ones (the kubelet's, the CNI's, flannel's). */
export const K3S_AGENT_DIRS = ['/var/lib/kubelet', '/var/lib/cni', '/run/flannel'] as const

/** Links the killall script deletes: the CNI bridge, flannel's devices, kube-proxy's IPVS dummy. */
export const K3S_LINKS = ['cni0', 'flannel.1', 'flannel-v6.1', 'flannel-wg', 'flannel-wg-v6', 'kube-ipvs0'] as const

/** Seconds the whole clean-up may take on the worker before it is killed (an unmount can hang on a dead NFS server). */
export const KILLALL_SECONDS = 120

/**
 * The clean-up as one POSIX sh program. $1: the agent's data dir; then the links to delete, `--`, and the
 * directories to remove. Each step goes on when one before it fails, as k3s's scripts do; what failed is
 * said on stderr. (In this template, ${'$'}{ is the shell's own parameter expansion.)
 */
const KILLALL = String.raw`data=${'$'}{1%/}
shift
links=
while [ $# -gt 0 ] && [ "$1" != -- ]; do links="$links $1"; shift; done
shift
# 1. Each containerd shim's whole process tree (its children are the containers), and anything still run
#    from k3s's unpacked binaries under the data dir. Parents are read from /proc/PID/stat (after the
#    command name, which may hold spaces), all before the first kill.
table=$(for p in /proc/[0-9]*; do
  read -r s <"$p/stat" 2>/dev/null || continue
  set -- ${'$'}{s##*) }
  echo "$2 ${'$'}{p#/proc/}"
done)
tree() { for t; do echo "$t"; tree $(echo "$table" | awk -v p="$t" '$1 == p {print $2}'); done; }
victims=
for p in /proc/[0-9]*; do
  pid=${'$'}{p#/proc/}
  [ "$pid" != "$$" ] || continue
  args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  exe=$(readlink "$p/exe" 2>/dev/null) || exe=
  case "$args" in *"$data"/data/*/bin/containerd-shim*) victims="$victims $(tree "$pid")" ;; esac
  case "$exe" in "$data"/data/*) victims="$victims $pid" ;; esac
done
[ -z "$victims" ] || kill -KILL $victims 2>/dev/null
# 2. Mounts under k3s's run dir, the kubelet's pods and plugins, the CNI's network namespaces and the data
#    dir, deepest first.
awk -v d="$data" '{m = $5
  if (m == "/run/k3s" || index(m, "/run/k3s/") == 1 || index(m, "/var/lib/kubelet/pods/") == 1 ||
      index(m, "/var/lib/kubelet/plugins/") == 1 || index(m, "/run/netns/cni-") == 1 || index(m, d "/") == 1) print m
}' /proc/self/mountinfo | sort -r | while read -r m; do
  umount -- "$m" 2>/dev/null || umount -l -- "$m" || echo "cannot unmount $m" >&2
done
# 3. The CNI's network namespaces, the pods' veths on cni0, then k3s's links.
if command -v ip >/dev/null 2>&1; then
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    ip netns delete "${'$'}{ns##*/}" 2>/dev/null || rm -f -- "$ns"
  done
  for veth in $(ip -o link show master cni0 2>/dev/null | awk '{sub(/@.*/, "", $2); sub(/:$/, "", $2); print $2}'); do
    ip link delete "$veth" 2>/dev/null
  done
  for link in $links; do
    ! ip link show dev "$link" >/dev/null 2>&1 || ip link delete "$link" || echo "cannot delete link $link" >&2
  done
fi
# 4. KUBE-, CNI- and flannel rules and chains, in every iptables backend present (legacy and nft), as
#    k3s-killall.sh filters them; a table with none of them is left as it is.
for x in iptables ip6tables; do
  for save in "$x-legacy-save" "$x-nft-save" "$x-save"; do
    command -v "$save" >/dev/null 2>&1 || continue
    restore=${'$'}{save%-save}-restore
    command -v "$restore" >/dev/null 2>&1 || continue
    [ "$save" != "$x-save" ] || [ -z "$seen" ] || continue # plain x-save is one of the two when they exist
    seen=yes
    rules=$("$save" 2>/dev/null) || continue
    printf '%s\n' "$rules" | grep -qE 'KUBE-|CNI-|[Ff][Ll][Aa][Nn][Nn][Ee][Ll]' || continue
    printf '%s\n' "$rules" | grep -v KUBE- | grep -v CNI- | grep -iv flannel | "$restore" ||
      echo "$restore could not remove k3s's rules" >&2
  done
  seen=
done
# 5. The kubelet's, the CNI's and flannel's directories (their mounts are gone).
rm -rf --one-file-system -- "$@" || echo "cannot remove $*" >&2
true`

/**
 * Run k3s-killall's steps on the worker, as root, within KILLALL_SECONDS (through `timeout` where the worker
 * has it), for the agent whose data dir is `dataDir`, and remove K3S_AGENT_DIRS.
 */
export async function killallAgent(host: Host, dataDir: string): Promise<void> {
  const argv = ['sh', '-c', KILLALL, 'sh', dataDir, ...K3S_LINKS, '--', ...K3S_AGENT_DIRS]
  const bounded = [
    'sh',
    '-c',
    'if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$0" "$@"; else exec "$@"; fi',
    String(KILLALL_SECONDS),
    ...argv,
  ]
  const result = await host.run(bounded, {sudo: true})
  if (result.exitCode === 0) return
  const why =
    result.exitCode === 137 || result.signal === 'SIGKILL'
      ? `it did not finish within ${KILLALL_SECONDS} s`
      : result.stderr.trim().split('\n').pop() || `exit ${result.exitCode ?? result.signal}`
  throw new HybridError(
    'AGENT_UNINSTALL_FAILED',
    `${host.name}: cleaning up after the k3s agent (its containers, mounts, network namespaces, links and iptables rules) failed: ${why}`,
  )
}
