import {RemoteError} from '../remote/errors.js'
import type {HostFacts, SshdFacts} from '../remote/facts.js'
import type {Host} from '../remote/host.js'

/**
 * Let the API tunnel's remote forward listen on the advertised address (docs/architecture.md, "Tunnels").
 * With sshd's default `GatewayPorts no` a remote forward for 100.64.255.1:6443 is quietly bound to the
 * worker's loopback instead, where agents do not look; `clientspecified` binds the address the client
 * asks for, and only that one. The change is one drop-in file, scoped to the account hybrid logs in as
 * (`Match User`) and to that one address: remote forwards may listen there only (`PermitListen`), local
 * forwards (`ssh -L`, what `kubeconfig --via` prints) may lead there only (`PermitOpen`); every other
 * account keeps the host's own settings. Debian's sshd_config includes sshd_config.d/*.conf at its top; a
 * Match block in an included file ends with that file, and within Match blocks the first value read wins.
 * It also lets sshd notice a client that vanished (ClientAlive), so a tunnel whose sandbox stopped without
 * closing it frees the port within a minute. A reload keeps every open session.
 */

export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/hybrid-tunnel.conf'

/** Who the remote forward is for: the login account, and the one address and port it may listen on. */
export interface ForwardScope {
  readonly user: string
  readonly address: string
  readonly port: number
}

/** sshd's ClientAlive: a vanished client is let go after interval × count seconds. */
const CLIENT_ALIVE = {interval: 15, count: 3}
const HEADER = '# Written by hybrid'

/** The drop-in's text for `scope`. */
export function dropInText(scope: ForwardScope): string {
  return `${HEADER}: its API tunnel listens on the cluster's advertised address on this host.
# hybrid removes this file when it takes the worker out of the cluster.
Match User ${scope.user}
    AllowTcpForwarding yes
    GatewayPorts clientspecified
    PermitListen ${listenSpec(scope)}
    # Local forwards (ssh -L, for hybrid kubeconfig --via) may lead to the API on this host, nowhere else.
    PermitOpen ${listenSpec(scope)}
    # A session whose client vanished (the sandbox stopped without closing it) lets go of the tunnel's
    # port within a minute, instead of after TCP's two hours, so the next tunnel can listen there.
    ClientAliveInterval ${CLIENT_ALIVE.interval}
    ClientAliveCountMax ${CLIENT_ALIVE.count}
`
}

/** sshd's effective settings for a connection of one account (`sshd -T -C user=…`). */
export interface ScopedSshd extends Pick<SshdFacts, 'gatewayPorts' | 'allowTcpForwarding'> {
  /** permitlisten as sshd -T prints it: "any", "none" or host:port entries. */
  readonly permitListen: readonly string[]
  readonly clientAliveInterval: number
  readonly clientAliveCountMax: number
}

export interface SshdForwardingRecord {
  readonly dropIn: string
  /** True when the drop-in is hybrid's to remove (written now or by an earlier run). */
  readonly written: boolean
}

export interface SshdForwardingResult extends SshdForwardingRecord {
  /** False when sshd already allowed the forward ("already"). */
  readonly changed: boolean
}

/** Does sshd bind a remote forward on the address the client names? */
export function allowsRemoteForward(sshd: Pick<SshdFacts, 'gatewayPorts' | 'allowTcpForwarding'>): boolean {
  return (
    (sshd.gatewayPorts === 'clientspecified' || sshd.gatewayPorts === 'yes') &&
    ['yes', 'all', 'remote'].includes(sshd.allowTcpForwarding ?? '')
  )
}

/** Does `scope`'s account get the forward on its address, and lose a vanished client within a minute? */
export function servesScope(sshd: ScopedSshd, scope: ForwardScope): boolean {
  const listens = sshd.permitListen.some((p) => p === 'any' || p === listenSpec(scope))
  const alive = sshd.clientAliveInterval > 0 && sshd.clientAliveInterval * sshd.clientAliveCountMax <= 60
  return allowsRemoteForward(sshd) && listens && alive
}

/**
 * Whether the drop-in is to be written (reads only, so a dry run asks it too): not when it is there as it
 * should be, or when sshd already gives the account what the tunnel needs; always when an earlier hybrid's
 * drop-in differs (it loosened forwarding for every account). `facts.sshd` stands in where `sshd -T`
 * cannot be asked.
 */
export async function remoteForwardNeedsDropIn(
  host: Host,
  scope: ForwardScope,
  facts?: Pick<HostFacts, 'sshd'>,
): Promise<boolean> {
  const current = (await host.readFile(SSHD_DROP_IN, {sudo: true}))?.toString()
  if (current === dropInText(scope)) return false
  if (current?.startsWith(HEADER)) return true
  const scoped = await scopedSettings(host, scope.user)
  if (scoped) return !servesScope(scoped, scope)
  return !allowsRemoteForward(facts?.sshd ?? {gatewayPorts: null, allowTcpForwarding: null})
}

/**
 * Make sshd on `host` accept the tunnel's remote forward for `scope` (as root): nothing when it already
 * does (`remoteForwardNeedsDropIn`), else the drop-in, checked with `sshd -t` and `sshd -T -C` before sshd
 * is reloaded (a drop-in that does not take effect is removed again).
 */
export async function allowRemoteForward(
  host: Host,
  scope: ForwardScope,
  facts?: Pick<HostFacts, 'sshd'>,
): Promise<SshdForwardingResult> {
  if (!/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(scope.user))
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: the login user ${JSON.stringify(scope.user)} cannot be named in an sshd Match block; set GatewayPorts clientspecified for it in sshd_config yourself`,
      host.name,
    )
  const text = dropInText(scope)
  const ours = (await host.readFile(SSHD_DROP_IN, {sudo: true}))?.toString() === text
  if (!(await remoteForwardNeedsDropIn(host, scope, facts)))
    return {dropIn: SSHD_DROP_IN, written: ours, changed: false}

  await host.writeFile(SSHD_DROP_IN, text, {mode: 0o644, owner: 'root:root', sudo: true})
  const checked = await host.run(sshd('-t'), {sudo: true})
  if (checked.exitCode !== 0) {
    await removeDropIn(host)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: sshd -t rejects its configuration with hybrid's ${SSHD_DROP_IN} (${oneLine(checked.stderr)}), so it was removed again; fix sshd_config, or set GatewayPorts clientspecified there yourself`,
      host.name,
    )
  }
  const after = await scopedSettings(host, scope.user)
  if (!after || !servesScope(after, scope)) {
    await removeDropIn(host)
    const seen = after
      ? `GatewayPorts ${after.gatewayPorts}, AllowTcpForwarding ${after.allowTcpForwarding} and PermitListen ${after.permitListen.join(' ')}`
      : 'settings sshd -T cannot show'
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: sshd still has ${seen} for ${scope.user} with hybrid's ${SSHD_DROP_IN} (sshd_config sets them before it reads sshd_config.d, or does not include it), so the API tunnel cannot listen on the advertised address; set GatewayPorts clientspecified and AllowTcpForwarding yes in sshd_config and reload sshd`,
      host.name,
    )
  }
  await reloadSshd(host)
  return {dropIn: SSHD_DROP_IN, written: true, changed: true}
}

/** Remove the drop-in the record names, and reload sshd; nothing when it is already gone. */
export async function revertRemoteForward(host: Host, record: SshdForwardingRecord): Promise<{changed: boolean}> {
  if (!record.written || !(await host.stat(record.dropIn, {sudo: true}))) return {changed: false}
  await removeDropIn(host, record.dropIn)
  await reloadSshd(host)
  return {changed: true}
}

/**
 * Reload sshd the way its init does it; without an init system (containers, the lab's hosts) SIGHUP to
 * the daemon of /run/sshd.pid, which re-reads its configuration and keeps its sessions. sshd re-executes
 * itself on SIGHUP and refuses connections until it listens again, which it marks by writing its pid
 * file anew: the reload waits for that (up to 5 s), so the tunnel's next connection finds it listening.
 */
export async function reloadSshd(host: Host): Promise<void> {
  const script = `
pidfile=/run/sshd.pid
before=$(stat -c %y "$pidfile" 2>/dev/null || true)
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl reload ssh 2>/dev/null || systemctl reload sshd || exit
elif [ -e /run/openrc/softlevel ] && command -v rc-service >/dev/null 2>&1; then
  # sshd on Alpine and Gentoo, ssh on Debian (its script serves OpenRC too)
  if rc-service --exists sshd; then rc-service sshd reload; else rc-service ssh reload; fi || exit
elif [ -s "$pidfile" ]; then
  kill -HUP "$(cat "$pidfile")" || exit
else
  echo "no systemd, no OpenRC and no $pidfile" >&2; exit 3
fi
[ -n "$before" ] || exit 0
for _ in $(seq 50); do
  now=$(stat -c %y "$pidfile" 2>/dev/null || true)
  [ -n "$now" ] && [ "$now" != "$before" ] && exit 0
  sleep 0.1
done`
  const result = await host.run(['sh', '-c', script], {sudo: true})
  if (result.exitCode !== 0)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: could not reload sshd (${oneLine(result.stderr) || `exit ${result.exitCode}`}); reload it by hand so it reads ${SSHD_DROP_IN}`,
      host.name,
    )
}

/**
 * sshd's settings for a connection of `user` (`sshd -T -C`, as root, Match blocks applied); undefined
 * when it cannot be asked (no root, or an sshd too old for -C).
 */
export async function scopedSettings(host: Host, user: string): Promise<ScopedSshd | undefined> {
  if ((await host.privilege()).ability === 'none') return undefined
  const spec = `user=${user},host=hybrid-check,addr=127.0.0.1`
  const result = await host.run(['sh', '-c', 'PATH="$PATH:/usr/sbin:/sbin"; exec sshd -T -C "$1"', 'sh', spec], {
    sudo: true,
  })
  if (result.exitCode !== 0) return undefined
  const value = (key: string) => new RegExp(`^${key} (.+)$`, 'm').exec(result.stdout)?.[1]?.trim() ?? null
  return {
    gatewayPorts: value('gatewayports'),
    allowTcpForwarding: value('allowtcpforwarding'),
    permitListen: (value('permitlisten') ?? 'any').split(/\s+/),
    clientAliveInterval: Number(value('clientaliveinterval') ?? 0),
    clientAliveCountMax: Number(value('clientalivecountmax') ?? 3),
  }
}

/** PermitListen's host:port (an IPv6 address in brackets). */
function listenSpec(scope: ForwardScope): string {
  return `${scope.address.includes(':') ? `[${scope.address}]` : scope.address}:${scope.port}`
}

async function removeDropIn(host: Host, path = SSHD_DROP_IN): Promise<void> {
  await host.check(['rm', '-f', path], {sudo: true})
}

function sshd(flag: string): string[] {
  return ['sh', '-c', `PATH="$PATH:/usr/sbin:/sbin"; exec sshd ${flag}`]
}

function oneLine(text: string): string {
  return text.trim().split('\n').join('; ')
}
