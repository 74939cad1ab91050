import type {LabHost} from './lab.js'

/** The advertised address hybrid puts on workers in tunnel mode (the inventory's default). */
export const ADVERTISED = '100.64.255.1'

/** The pid of the k3s agent inside a worker (the stand-in runs as `node …/k3s agent`), or undefined. */
export async function agentPid(host: LabHost): Promise<number | undefined> {
  const r = await host.exec([
    'sh',
    '-c',
    'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f" | grep -q "k3s[ ]agent" && echo "${f#/proc/}"; done',
  ])
  const pid = r.stdout
    .split('\n')
    .map((l) => l.split('/')[0])
    .find((l) => /^\d+$/.test(l))
  return pid ? Number(pid) : undefined
}

/**
 * Every path k3s's agent uninstall script (with its killall script) removes, as installed by its installer or
 * made by a running agent, and hybrid's own (its supervisor, pidfile, sshd drop-in). /etc/rancher/node is not
 * here: k3s's uninstall keeps it (the node's password, for the next join).
 */
export const AGENT_PATHS = [
  '/usr/local/bin/k3s',
  '/etc/rancher/k3s',
  '/var/lib/rancher/k3s',
  '/run/k3s',
  '/run/flannel',
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/etc/systemd/system/k3s-agent.service',
  '/etc/systemd/system/k3s-agent.service.env',
  '/etc/init.d/k3s-agent',
  '/var/lib/rancher/hybrid',
  '/run/k3s-agent.pid',
  '/etc/ssh/sshd_config.d/hybrid-tunnel.conf',
]

/** The links k3s's killall script deletes (flannel's, the CNI bridge's, kube-proxy's IPVS dummy). */
export const AGENT_LINKS = ['cni0', 'flannel.1', 'flannel-v6.1', 'flannel-wg', 'flannel-wg-v6', 'kube-ipvs0']

/**
 * What k3s's agent leaves running and set up on its machine, as the worker shows it (empty: nothing): mounts
 * under its directories, cni-* network namespaces, links, KUBE-/CNI-/flannel iptables lines in each backend
 * (legacy and nft, IPv4 and IPv6), containerd shims and containers (a stand-in container runs from a bundle
 * under /run/k3s/containerd; a real one sits in a kubepods cgroup).
 */
const AGENT_STATE = String.raw`
for m in $(awk '{print $5}' /proc/self/mountinfo); do
  case $m in /run/k3s | /run/k3s/* | /var/lib/kubelet/* | /var/lib/rancher/k3s/* | /run/netns/cni-*) echo "mount $m" ;; esac
done
for ns in /run/netns/cni-*; do [ ! -e "$ns" ] || echo "network namespace $ns"; done
for link in "$@"; do ! ip link show dev "$link" >/dev/null 2>&1 || echo "link $link"; done
for save in iptables-legacy-save iptables-nft-save ip6tables-legacy-save ip6tables-nft-save; do
  command -v "$save" >/dev/null 2>&1 || continue
  "$save" 2>/dev/null | grep -E 'KUBE-|CNI-|[Ff][Ll][Aa][Nn][Nn][Ee][Ll]' | sed "s|^|$save: |"
done
self=$(tr '\0' ' ' </proc/$$/cmdline)
for p in /proc/[0-9]*; do
  args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  [ "$args" != "$self" ] || continue # this script, and its subshells
  case $args in
  *containerd-shim*) echo "shim $args" ;;
  */run/k3s/containerd/*) echo "container $args" ;;
  *) ! grep -q kubepods "$p/cgroup" 2>/dev/null || echo "container $args" ;;
  esac
done
true`

/** What k3s's agent (and hybrid's install of it) leaves on a worker, as the worker shows it; empty: nothing. */
export async function agentLeftovers(host: LabHost): Promise<string[]> {
  const left: string[] = []
  for (const path of AGENT_PATHS) if ((await host.exec(['test', '-e', path])).code === 0) left.push(path)
  const state = await host.exec(['sh', '-c', AGENT_STATE, 'sh', ...AGENT_LINKS])
  if (state.code !== 0) throw new Error(`cannot read ${host.name}'s state: ${state.stderr}`)
  left.push(...state.stdout.split('\n').filter(Boolean))
  if (await agentPid(host)) left.push('k3s agent process')
  return left
}

/** What hybrid leaves on a worker it joined (empty: nothing): the agent's leftovers, the address, hybrid0, the tunnel. */
export async function leftOn(host: LabHost, apiPort: number): Promise<string[]> {
  const left = await agentLeftovers(host)
  const addresses = await host.exec(['ip', '-o', 'addr', 'show'])
  if (addresses.stdout.includes(`${ADVERTISED}/32`)) left.push(`address ${ADVERTISED}`)
  if ((await host.exec(['ip', 'link', 'show', 'hybrid0'])).code === 0) left.push('link hybrid0')
  const listening = await host.exec(['ss', '-Htln', `sport = :${apiPort}`])
  if (listening.stdout.trim() !== '') left.push(`listener on ${apiPort}`)
  return left
}
