import type {FactsOptions, Host} from './host.js'
import {K3S_TRACES, OWNER_FILE, type Owner, parseOwner} from './ownership.js'
import type {SudoResolution} from './sudo.js'

/**
 * What hybrid needs to know about a worker before it changes anything (docs/architecture.md, "Workers"): gathered with
 * one read-only shell program (plus `sshd -T` where the user may run it), parsed here. Works on any
 * Host, so the sandbox's own machine reports the same shape.
 */

export type K3sArch = 'amd64' | 'arm64' | 'arm'
export type InitSystem = 'systemd' | 'openrc' | 'none'

export interface HostFacts {
  readonly user: string
  readonly sudo: SudoResolution
  /** From /etc/os-release; null when the file is missing. */
  readonly os: {readonly id: string; readonly version: string; readonly prettyName: string} | null
  /** `uname -m` and its k3s name (null: no k3s release for it). */
  readonly arch: {readonly machine: string; readonly k3s: K3sArch | null}
  /** The init system actually running, and PID 1's name as seen. */
  readonly init: {readonly system: InitSystem; readonly pid1: string | null}
  readonly k3s: K3sInstall
  /** Ports the agent (and, in tunnel mode, the API forward) must bind. */
  readonly ports: readonly PortFact[]
  readonly sshd: SshdFacts
  /** Tunnel mode: where the advertised address already lives on this host. */
  readonly advertiseAddress: AdvertiseAddressFact | null
  /**
   * Every address on the host's interfaces (`ip -o addr show`), as the kubelet checks a node IP against
   * them; null when they could not be listed (no `ip` there).
   */
  readonly interfaceAddresses: readonly InterfaceAddress[] | null
}

export interface InterfaceAddress {
  readonly interface: string
  readonly address: string
}

export interface K3sInstall {
  /** Path of an installed k3s binary, or null. */
  readonly binary: string | null
  /** "v1.34.1+k3s1", or null when no binary answered --version. */
  readonly version: string | null
  /** Service definitions found: k3s (a server) and k3s-agent. */
  readonly server: boolean
  readonly agent: boolean
  /** Other traces of an install found (K3S_TRACES: its data dir, its config). */
  readonly traces: readonly string[]
  /** hybrid's mark (OWNER_FILE), when a hybrid cluster installed the agent. */
  readonly owner: Owner | null
}

export interface PortFact {
  readonly port: number
  /** The address it must be free on ('*' for any). */
  readonly address: string
  readonly purpose: string
  readonly free: boolean
}

export interface SshdFacts {
  /** Lower case as sshd -T prints: no | yes | clientspecified; null when unknown. */
  readonly gatewayPorts: string | null
  /** yes | no | local | remote | all; null when unknown. */
  readonly allowTcpForwarding: string | null
  /** Where the values came from. */
  readonly source: 'sshd -T' | 'config files' | 'unknown'
}

export interface AdvertiseAddressFact {
  readonly address: string
  /** Interfaces that already carry it ([] when it is free). */
  readonly interfaces: readonly string[]
  /** Carried only by hybrid's own places (hybrid0, or lo as the fallback): left from an earlier run. */
  readonly ours: boolean
}

/** The agent's own listeners: the kubelet, and the agent's local load balancer to the API. */
const AGENT_PORTS: ReadonlyArray<{port: number; address: string; purpose: string}> = [
  {port: 10250, address: '*', purpose: 'kubelet'},
  {port: 6444, address: '127.0.0.1', purpose: "k3s agent's API load balancer"},
]

const SCRIPT = `
sec() { printf '\\n@@%s\\n' "$1"; }
sec os; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
sec user; id -un
sec arch; uname -m
sec pid1; cat /proc/1/comm 2>/dev/null
sec systemd; [ -d /run/systemd/system ] && echo yes
sec openrc; [ -e /run/openrc/softlevel ] && echo yes
sec k3s
for f in /usr/local/bin/k3s /usr/bin/k3s /bin/k3s; do
  if [ -x "$f" ]; then echo "path=$f"; "$f" --version 2>/dev/null | head -n 1; break; fi
done
sec units; ls -1 /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service /etc/init.d/k3s /etc/init.d/k3s-agent 2>/dev/null
sec traces; for p in ${K3S_TRACES.join(' ')}; do [ -e "$p" ] && echo "$p"; done
sec owner; cat ${OWNER_FILE} 2>/dev/null
sec tcp; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
sec addr; ip -o addr show 2>/dev/null
sec sshdconf
for f in /etc/ssh/sshd_config.d/*.conf /etc/ssh/sshd_config; do [ -r "$f" ] && { echo "#@file $f"; cat "$f"; }; done
true
`

/** Gather the facts of `host` (read-only). */
export async function gatherFacts(
  host: Pick<Host, 'run'>,
  sudo: SudoResolution,
  options: FactsOptions,
): Promise<HostFacts> {
  const result = await host.run(['sh', '-c', SCRIPT])
  const sections = splitSections(result.stdout)
  const sshdT = await effectiveSshd(host, sudo)
  const listeners = parseProcNetTcp(sections.tcp ?? '')
  const tunnel = options.advertiseAddress !== undefined && options.apiPort !== undefined
  const wanted = [
    ...AGENT_PORTS,
    ...(tunnel ? [{port: options.apiPort, address: options.advertiseAddress, purpose: 'API tunnel'}] : []),
  ]
  const k3sLines = (sections.k3s ?? '').split('\n')
  const units = sections.units ?? ''
  return {
    user: (sections.user ?? '').trim(),
    sudo,
    os: parseOsRelease(sections.os ?? ''),
    arch: {machine: (sections.arch ?? '').trim(), k3s: k3sArch((sections.arch ?? '').trim())},
    init: {
      system: sections.systemd?.trim() === 'yes' ? 'systemd' : sections.openrc?.trim() === 'yes' ? 'openrc' : 'none',
      pid1: sections.pid1?.trim() || null,
    },
    k3s: {
      binary: k3sLines.find((l) => l.startsWith('path='))?.slice(5) ?? null,
      version: /k3s version (v\S+)/.exec(sections.k3s ?? '')?.[1] ?? null,
      server: /\/k3s(\.service)?$/m.test(units),
      agent: /\/k3s-agent(\.service)?$/m.test(units),
      traces: (sections.traces ?? '').split('\n').filter(Boolean),
      owner: parseOwner(sections.owner),
    },
    ports: wanted.map((w) => ({...w, free: portFree(listeners, w.port, w.address)})),
    sshd: sshdT ?? sshdFromConfig(sections.sshdconf ?? ''),
    advertiseAddress: tunnel ? addressFact(options.advertiseAddress, sections.addr) : null,
    interfaceAddresses: sections.addr?.trim() ? parseInterfaceAddresses(sections.addr) : null,
  }
}

function splitSections(stdout: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of stdout.split('\n@@').slice(1)) {
    const newline = part.indexOf('\n')
    out[newline < 0 ? part : part.slice(0, newline)] = newline < 0 ? '' : part.slice(newline + 1)
  }
  return out
}

export function parseOsRelease(text: string): HostFacts['os'] {
  const values: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) values[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2')
  }
  if (!values.ID) return null
  return {id: values.ID, version: values.VERSION_ID ?? '', prettyName: values.PRETTY_NAME ?? values.ID}
}

/** `uname -m` as k3s names its release assets. */
export function k3sArch(machine: string): K3sArch | null {
  if (machine === 'x86_64' || machine === 'amd64') return 'amd64'
  if (machine === 'aarch64' || machine === 'arm64' || machine === 'armv8l') return 'arm64'
  if (/^armv[67]/.test(machine) || machine === 'arm' || machine === 'armhf') return 'arm'
  return null
}

export interface Listener {
  readonly address: string
  readonly port: number
}

/** Listening TCP sockets from /proc/net/tcp and tcp6 (state 0A), addresses in text form. */
export function parseProcNetTcp(text: string): Listener[] {
  const out: Listener[] = []
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 4 || fields[3] !== '0A') continue
    const [hexAddress, hexPort] = fields[1].split(':')
    if (!hexPort) continue
    out.push({address: procAddress(hexAddress), port: Number.parseInt(hexPort, 16)})
  }
  return out
}

/** /proc/net's hex: IPv4 as one little-endian word, IPv6 as four. */
function procAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? []
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => Number.parseInt(b, 16)))
  if (bytes.length === 4) return bytes.join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16))
  const v6 = groups.join(':')
  if (v6 === '0:0:0:0:0:0:0:0') return '::'
  if (v6.startsWith('0:0:0:0:0:ffff:')) return bytes.slice(12).join('.')
  return v6
}

/** Can `address:port` be bound? Not when something listens on it, or on a wildcard address ('*': any listener). */
export function portFree(listeners: readonly Listener[], port: number, address: string): boolean {
  return !listeners.some(
    (l) =>
      l.port === port && (address === '*' || l.address === address || l.address === '0.0.0.0' || l.address === '::'),
  )
}

/** sshd's effective GatewayPorts and AllowTcpForwarding (`sshd -T`, as root); undefined when it cannot be asked. */
export async function effectiveSshd(host: Pick<Host, 'run'>, sudo: SudoResolution): Promise<SshdFacts | undefined> {
  if (sudo.ability === 'none') return undefined
  const result = await host.run(['sh', '-c', 'PATH="$PATH:/usr/sbin:/sbin"; exec sshd -T'], {sudo: true})
  if (result.exitCode !== 0) return undefined
  const value = (key: string) => new RegExp(`^${key} (\\S+)$`, 'm').exec(result.stdout)?.[1] ?? null
  return {gatewayPorts: value('gatewayports'), allowTcpForwarding: value('allowtcpforwarding'), source: 'sshd -T'}
}

/**
 * GatewayPorts and AllowTcpForwarding as sshd would read its files: the first value obtained wins, the
 * drop-ins (included at the top of Debian's sshd_config) before the main file, nothing under `Match`.
 * Files not readable count as unknown (sshd's defaults are `no` and `yes`).
 */
export function sshdFromConfig(text: string): SshdFacts {
  if (!text.includes('#@file ')) return {gatewayPorts: null, allowTcpForwarding: null, source: 'unknown'}
  const found: Record<string, string> = {}
  let inMatch = false
  for (const raw of text.split('\n')) {
    if (raw.startsWith('#@file ')) {
      inMatch = false
      continue
    }
    const m = /^\s*(\w+)\s*(?:=\s*|\s+)(\S+)/.exec(raw.replace(/#.*/, ''))
    if (!m) continue
    const key = m[1].toLowerCase()
    if (key === 'match') inMatch = true
    if (inMatch || found[key] !== undefined) continue
    found[key] = m[2].toLowerCase()
  }
  return {
    gatewayPorts: found.gatewayports ?? 'no',
    allowTcpForwarding: found.allowtcpforwarding ?? 'yes',
    source: 'config files',
  }
}

/** Every interface address in `ip -o addr show`'s output (the interface's `@link` suffix left off). */
export function parseInterfaceAddresses(ipOutput: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = []
  for (const line of ipOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet6?\s+([^/\s]+)/.exec(line)
    if (m) out.push({interface: m[1].replace(/@.*$/, ''), address: m[2]})
  }
  return out
}

/** Interfaces carrying `address`, from `ip -o addr show` (null output: unknown, treated as free). */
export function addressFact(address: string, ipOutput: string | undefined): AdvertiseAddressFact {
  const interfaces = new Set(
    parseInterfaceAddresses(ipOutput ?? '')
      .filter((a) => a.address === address)
      .map((a) => a.interface),
  )
  const list = [...interfaces]
  return {address, interfaces: list, ours: list.length > 0 && list.every((i) => i === 'hybrid0' || i === 'lo')}
}
