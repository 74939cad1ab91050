import {RemoteError} from '../remote/errors.js'
import {effectiveSshd, type HostFacts, type SshdFacts} from '../remote/facts.js'
import type {Host} from '../remote/host.js'

/**
 * Let the API tunnel's remote forward listen on the advertised address (docs/architecture.md, "Tunnels").
 * With sshd's default `GatewayPorts no` a remote forward for 100.64.255.1:6443 is quietly bound to the
 * worker's loopback instead, where agents do not look; `clientspecified` binds the address the client
 * asks for, and only that one (unlike `yes`, which would bind every address). The change is one drop-in
 * file: Debian's sshd_config includes sshd_config.d/*.conf at its top and the first value read wins, so
 * the drop-in overrides the main file. It also lets sshd notice a client that vanished (ClientAlive), so
 * a tunnel whose sandbox stopped without closing it frees the port within a minute. A reload keeps every
 * open session.
 */

export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/hybrid-tunnel.conf'

const DROP_IN_TEXT = `# Written by hybrid: its API tunnel listens on the cluster's advertised address on this host.
# hybrid removes this file when it takes the worker out of the cluster.
GatewayPorts clientspecified
AllowTcpForwarding yes
# A session whose client vanished (the sandbox stopped without closing it) lets go of the tunnel's port
# within a minute, instead of after TCP's two hours, so the next tunnel can listen there.
ClientAliveInterval 15
ClientAliveCountMax 3
`

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

/**
 * Make sshd on `host` accept the tunnel's remote forward (as root): nothing when its effective settings
 * already do (`facts.sshd` when given, else `sshd -T`), else the drop-in, checked with `sshd -t` and
 * `sshd -T` before sshd is reloaded (a drop-in that does not take effect is removed again).
 */
export async function allowRemoteForward(host: Host, facts?: Pick<HostFacts, 'sshd'>): Promise<SshdForwardingResult> {
  const ours = (await host.readFile(SSHD_DROP_IN, {sudo: true}))?.toString() === DROP_IN_TEXT
  const before = facts?.sshd ?? (await currentSettings(host))
  if (allowsRemoteForward(before)) return {dropIn: SSHD_DROP_IN, written: ours, changed: false}

  await host.writeFile(SSHD_DROP_IN, DROP_IN_TEXT, {mode: 0o644, owner: 'root:root', sudo: true})
  const checked = await host.run(sshd('-t'), {sudo: true})
  if (checked.exitCode !== 0) {
    await removeDropIn(host)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: sshd -t rejects its configuration with hybrid's ${SSHD_DROP_IN} (${oneLine(checked.stderr)}), so it was removed again; fix sshd_config, or set GatewayPorts clientspecified there yourself`,
      host.name,
    )
  }
  const after = await currentSettings(host)
  if (!allowsRemoteForward(after)) {
    await removeDropIn(host)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: sshd still has GatewayPorts ${after.gatewayPorts} and AllowTcpForwarding ${after.allowTcpForwarding} with hybrid's ${SSHD_DROP_IN} (sshd_config sets them before it reads sshd_config.d, or does not include it), so the API tunnel cannot listen on the advertised address; set GatewayPorts clientspecified and AllowTcpForwarding yes in sshd_config and reload sshd`,
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

async function currentSettings(host: Host): Promise<SshdFacts> {
  const settings = await effectiveSshd(host, await host.privilege())
  if (!settings)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: sshd -T cannot be run as root there, so hybrid cannot tell whether sshd allows the API tunnel; check ssh.sudo`,
      host.name,
    )
  return settings
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
