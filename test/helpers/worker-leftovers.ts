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

/** What hybrid leaves on a worker it joined (empty: nothing). */
export async function leftOn(host: LabHost, apiPort: number): Promise<string[]> {
  const left: string[] = []
  for (const path of [
    '/usr/local/bin/k3s',
    '/etc/rancher/k3s',
    '/var/lib/rancher/k3s',
    '/var/lib/rancher/hybrid',
    '/run/k3s',
    '/run/k3s-agent.pid',
    '/etc/ssh/sshd_config.d/hybrid-tunnel.conf',
  ])
    if ((await host.exec(['test', '-e', path])).code === 0) left.push(path)
  const addresses = await host.exec(['ip', '-o', 'addr', 'show'])
  if (addresses.stdout.includes(`${ADVERTISED}/32`)) left.push(`address ${ADVERTISED}`)
  if ((await host.exec(['ip', 'link', 'show', 'hybrid0'])).code === 0) left.push('link hybrid0')
  if (await agentPid(host)) left.push('k3s agent process')
  const listening = await host.exec(['ss', '-Htln', `sport = :${apiPort}`])
  if (listening.stdout.trim() !== '') left.push(`listener on ${apiPort}`)
  return left
}
