import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, readlinkSync, rmSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {constants, tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {hasTool, isRoot, requireTool, skipUnless} from './requires.js'
import {startTinyproxy} from './tinyproxy.js'

/**
 * Lab worker hosts for tests: real OpenSSH `sshd` in network namespaces on a bridge of the lab's own,
 * made and removed by scripts/lab/workers.sh (the code users run for their lab; nothing here touches a
 * namespace itself). Each lab claims its own subnet 10.213.K.0/24 (K 1..254; 10.213.0.0/24 is the user's
 * lab), so labs of parallel test files never collide. Every resource is recorded in `dir/state` as it is
 * made and removed by that record in `destroy()`; a lab whose test process died is taken down by the next
 * lab that claims its subnet.
 */
export const WORKERS_SH = fileURLToPath(new URL('../../../scripts/lab/workers.sh', import.meta.url))
/** Lab hosts that boot an init system (systemd-nspawn on a cached Debian root), on a lab of workers.sh. */
export const INIT_HOSTS_SH = fileURLToPath(new URL('../../../scripts/lab/init-hosts.sh', import.meta.url))

export interface LabHostSpec {
  /** The host's name (its hostname too): a-z, 0-9 and '-', starting with a letter; e.g. 'w1'. */
  name: string
  /** Extra sshd_config lines, e.g. ['GatewayPorts no']; they come after the Include of sshd_config.d. */
  sshd?: string[]
  /** Default true; false: root's authorized_keys is empty, so the lab key is refused. */
  acceptLabKey?: boolean
  /** Default true; false: the host is up at its address but runs no sshd, so a connect is refused (RST). */
  listening?: boolean
  /** Default true; false: the host's link is down, so nothing answers at its address (no reply to ARP:
   * a connect fails with EHOSTUNREACH after about 3 s, or times out first if the client's timeout is shorter). */
  reachable?: boolean
  /** Default false; true: the host's sshd is also reached at a forwarded address (`forwardedAddress`). */
  forwarded?: boolean
  /** Extra accounts, each accepting the lab key; `sudoers` is the rest of a sudoers line, e.g. 'ALL=(ALL) ALL'. */
  users?: {name: string; password?: string; sudoers?: string}[]
  /**
   * Boot this init system as the host's PID 1 (scripts/lab/init-hosts.sh: systemd-nspawn on a cached Debian
   * bookworm root, sshd as its service, root accepting the lab key); default none (workers.sh's host, no
   * init). Only `name` applies to such a host; stopSshd, startSshd and regenerateHostKey do not. Check
   * requireInitHosts first.
   */
  init?: 'systemd' | 'openrc'
}

export interface ExecResult {
  stdout: string
  stderr: string
  code: number
}

export interface LabHost {
  readonly name: string
  readonly address: string
  readonly port: number
  /**
   * With {forwarded: true}: an unused address of the lab's subnet that this machine DNATs to the host's
   * sshd (workers.sh host-forward), as a NAT or port forward in front of a worker: the host does not have
   * it on any interface. The lab's known_hosts lists the host's key at it too.
   */
  readonly forwardedAddress?: string
  /** "ssh-ed25519 AAAA…": the host's public key as it is now (no comment). */
  readonly hostKey: string
  /** Run argv as root inside the host (its network, mount, UTS and PID namespaces), without ssh. */
  exec(argv: string[], options?: {input?: string}): Promise<ExecResult>
  /** Where a path of the host lives on this machine: its own directories are under the lab's dir (/var/lib:
   * what the host wrote there, over the machine's own); any other path is the machine's own, shared by every host. */
  pathOnMachine(pathInHost: string): string
  /** sshd's own log (`sshd -e`): connections, authentication, errors. */
  sshdLog(): Promise<string>
  /** Stop sshd and every session it serves (connections are cut), with `signal` (default SIGTERM). */
  stopSshd(signal?: NodeJS.Signals): Promise<void>
  startSshd(): Promise<void>
  /** A fresh host key; sshd restarts with it. The lab's known_hosts keeps the old one. */
  regenerateHostKey(): Promise<void>
}

export interface Lab {
  readonly dir: string
  /** The lab key (ed25519, no passphrase) every host accepts unless its spec says otherwise. */
  readonly identityFile: string
  /** Every host's key at its address, unless the lab was made with {knownHosts: 'empty'}. */
  readonly knownHosts: string
  /** The claimed subnet, e.g. '10.213.7.0/24'; the machine is .1 on the lab's bridge. */
  readonly subnet: string
  readonly hosts: readonly LabHost[]
  host(name: string): LabHost
  /** tinyproxy on 127.0.0.1 letting CONNECT through to the allowed hosts (names or addresses) on port 22
   * only; any other destination is answered "403 Filtered". Stopped by destroy() at the latest. */
  startProxy(options: {allow: string[]}): Promise<{url: string; stop(): Promise<void>}>
  /** With {bastion: true}: the one host on the lab's bridge (at .2); every other host sits behind it on a
   * bridge inside the bastion's namespace (at .139, .140, …) that this machine has no link to. */
  readonly bastion?: LabHost
  /** The coordinator's network namespace (workers.sh coordinator): on the lab's bridge at .5, outbound
   * only (new inbound connections are dropped); made on the first call, removed by destroy(). */
  coordinator(): Promise<string>
  /** Remove every recorded resource (also after a failed test); idempotent. */
  destroy(): Promise<void>
}

export interface LabOptions {
  hosts: LabHostSpec[]
  /** A subnet of 10.213.0.0/16 to claim, e.g. '10.213.9.0/24'; default: the first free one. */
  subnet?: string
  bastion?: boolean
  /** Default 'filled'. */
  knownHosts?: 'filled' | 'empty'
}

/** Skip (with the reason printed) unless this machine can run a lab: root, sshd, ip, nsenter, unshare. */
export function requireLab(ctx: Mocha.Context): void {
  skipUnless(ctx, isRoot(), 'lab hosts need root (namespaces, mounts, links); CI runs as root')
  skipUnless(ctx, existsSync('/usr/sbin/sshd'), '/usr/sbin/sshd is missing (apt-get install openssh-server)')
  requireTool(ctx, 'ip', 'iproute2')
  requireTool(ctx, 'nsenter', 'util-linux')
  requireTool(ctx, 'ssh-keygen', 'openssh-client')
  skipUnless(ctx, hasTool('unshare'), 'unshare is missing (apt-get install util-linux)')
}

/** Skip (with the reason printed) unless this machine can boot init hosts: a lab, and systemd-nspawn. */
export function requireInitHosts(ctx: Mocha.Context): void {
  requireLab(ctx)
  requireTool(ctx, 'systemd-nspawn', 'systemd-container')
  // The root is built once (scripts/setup.sh does it); without it debootstrap must be there to build it.
  const built = existsSync('/var/cache/hybrid/lab-root') || hasTool('debootstrap')
  skipUnless(ctx, built, 'no cached lab root and no debootstrap to build it (apt-get install debootstrap)')
}

/** Run workers.sh on one lab; resolves with its output and exit code (never rejects on a non-zero exit). */
export function runWorkers(dir: string, args: string[], input?: string): Promise<ExecResult> {
  return runCommand('bash', [WORKERS_SH, ...args], input, {...process.env, HYBRID_LAB_DIR: dir})
}

async function workers(dir: string, args: string[], input?: string, script = WORKERS_SH): Promise<string> {
  const result = await runCommand('bash', [script, ...args], input, {...process.env, HYBRID_LAB_DIR: dir})
  if (result.code !== 0)
    throw new Error(`${basename(script)} ${args[0]} failed (${result.code}): ${result.stderr.trim()}`)
  return result.stdout
}

class Host implements LabHost {
  readonly port = 22
  readonly address: string
  readonly forwardedAddress?: string
  private key: string
  private readonly mounts: [inHost: string, onMachine: string][]

  constructor(
    private readonly dir: string,
    readonly name: string,
  ) {
    const hostDir = join(dir, 'hosts', name)
    this.address = readFileSync(join(hostDir, 'address'), 'utf8').trim()
    if (existsSync(join(hostDir, 'forwarded')))
      this.forwardedAddress = readFileSync(join(hostDir, 'forwarded'), 'utf8').trim()
    this.key = readKey(hostDir)
    // The script's own list of what the host binds (source, target), longest target first.
    this.mounts = readFileSync(join(hostDir, 'mounts'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split('\t'))
      .map(([source, target]): [string, string] => [target, source])
      .sort((a, b) => b[0].length - a[0].length)
  }

  get hostKey(): string {
    return this.key
  }

  exec(argv: string[], options: {input?: string} = {}): Promise<ExecResult> {
    return runWorkers(this.dir, ['exec', this.name, ...argv], options.input)
  }

  pathOnMachine(pathInHost: string): string {
    for (const [inHost, onMachine] of this.mounts) {
      if (pathInHost === inHost) return onMachine
      if (pathInHost.startsWith(`${inHost}/`)) return onMachine + pathInHost.slice(inHost.length)
    }
    return pathInHost
  }

  sshdLog(): Promise<string> {
    return readFile(join(this.dir, 'hosts', this.name, 'sshd.log'), 'utf8').catch(() => '')
  }

  async stopSshd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await workers(this.dir, ['sshd-stop', this.name, signal.replace(/^SIG/, '')])
  }

  async startSshd(): Promise<void> {
    await workers(this.dir, ['sshd-start', this.name])
  }

  async regenerateHostKey(): Promise<void> {
    await workers(this.dir, ['host-key', this.name])
    this.key = readKey(join(this.dir, 'hosts', this.name))
  }
}

function readKey(hostDir: string): string {
  const line = readFileSync(join(hostDir, 'fs/etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')
  return line.trim().split(/\s+/).slice(0, 2).join(' ')
}

class TestLab implements Lab {
  readonly identityFile: string
  readonly knownHosts: string
  subnet = ''
  hosts: LabHost[] = []
  bastion?: LabHost
  private readonly proxies: {stop(): Promise<void>}[] = []
  private destroyed = false

  constructor(readonly dir: string) {
    this.identityFile = join(dir, 'ssh', 'id_ed25519')
    this.knownHosts = join(dir, 'ssh', 'known_hosts')
  }

  host(name: string): LabHost {
    const host = name === this.bastion?.name ? this.bastion : this.hosts.find((h) => h.name === name)
    if (!host) throw new Error(`the lab has no host ${name}`)
    return host
  }

  async startProxy(options: {allow: string[]}): Promise<{url: string; stop(): Promise<void>}> {
    const allowHosts = options.allow.map((nameOrAddress) =>
      /^[\d.]+$/.test(nameOrAddress) ? nameOrAddress : this.host(nameOrAddress).address,
    )
    const proxy = await startTinyproxy(this.dir, {connectPorts: [22], allowHosts})
    const handle = {url: proxy.url, stop: () => proxy.close()}
    this.proxies.push(handle)
    return handle
  }

  async coordinator(): Promise<string> {
    return (await workers(this.dir, ['coordinator'])).trim()
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    for (const proxy of this.proxies) await proxy.stop()
    if (existsSync(join(this.dir, 'state'))) await workers(this.dir, ['down', '--purge'])
    await rm(this.dir, {recursive: true, force: true})
    live.delete(this.dir)
  }

  async make(options: LabOptions): Promise<void> {
    const claim = ['claim', String(process.pid)]
    if (options.subnet) {
      const match = /^10\.213\.(\d{1,3})\.0\/24$/.exec(options.subnet)
      if (!match || Number(match[1]) < 1 || Number(match[1]) > 254)
        throw new Error(`subnet ${options.subnet} is not 10.213.K.0/24 with K in 1..254`)
      claim.push(match[1])
    }
    const net = (await workers(this.dir, claim)).trim()
    this.subnet = `${net}.0/24`
    const behind: string[] = []
    if (options.bastion) {
      await workers(this.dir, ['host-add', 'bastion', '0', '--bastion'])
      this.bastion = new Host(this.dir, 'bastion')
      behind.push('--behind', 'bastion')
    }
    // Hosts are made side by side (the script serialises only its record); all have finished, made or
    // failed, before an error is thrown, so that destroy() finds every record.
    const made = await Promise.allSettled(
      options.hosts.map(async (spec, i) => {
        if (spec.init) {
          await workers(this.dir, ['host-add', spec.name, String(i + 1), '--init', spec.init], '', INIT_HOSTS_SH)
          return new Host(this.dir, spec.name)
        }
        const args = ['host-add', spec.name, String(i + 1), ...behind]
        if (spec.acceptLabKey === false) args.push('--refuse-key')
        if (spec.listening === false) args.push('--no-sshd')
        if (spec.reachable === false) args.push('--link-down')
        for (const line of spec.sshd ?? []) args.push('--sshd-line', line)
        await workers(this.dir, args)
        if (spec.forwarded) await workers(this.dir, ['host-forward', spec.name])
        for (const user of spec.users ?? []) {
          const userArgs = ['host-user', spec.name, user.name]
          if (user.sudoers) userArgs.push('--sudoers', user.sudoers)
          if (user.password !== undefined) userArgs.push('--password-stdin')
          await workers(this.dir, userArgs, user.password)
        }
        return new Host(this.dir, spec.name)
      }),
    )
    for (const result of made) if (result.status === 'rejected') throw result.reason
    this.hosts = made.map((result) => (result as PromiseFulfilledResult<Host>).value)
    // known_hosts as it stands once every host is there (each host-add rewrote it with the hosts it saw).
    await workers(this.dir, ['known-hosts'])
    if (options.knownHosts === 'empty') await writeFile(this.knownHosts, '')
  }
}

// Labs not destroyed when the process exits (a test run cut short) are taken down on the way out, so
// nothing waits for the next claim of their subnet.
const live = new Set<string>()
process.once('exit', () => {
  for (const dir of live) {
    spawnSync('bash', [WORKERS_SH, 'down', '--purge'], {env: {...process.env, HYBRID_LAB_DIR: dir}, stdio: 'ignore'})
    rmSync(dir, {recursive: true, force: true})
  }
})

/** Make a lab; on any failure, whatever was made is removed before the error is thrown. */
export async function createLab(options: LabOptions): Promise<Lab> {
  const lab = new TestLab(await mkdtemp(join(tmpdir(), 'hybrid-lab-')))
  live.add(lab.dir)
  try {
    await lab.make(options)
  } catch (error) {
    await lab.destroy().catch(() => {})
    throw error
  }
  return lab
}

/** What a lab recorded (`dir/state`), for tests that check nothing is left behind. */
export async function labRecords(dir: string): Promise<string[][]> {
  const text = await readFile(join(dir, 'state'), 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '))
}

/**
 * What of a lab's record (`dir/state`, read before it was taken down at `downAt`, see ticksNow()) still
 * exists on this machine: processes (pid and start time), namespaces (by name, and by inode when a process
 * that started before `downAt` is in one: a freed inode is soon reused by new namespaces), links, mounts,
 * the subnet claim, an init host's root overlay and cgroup. Empty when everything was removed.
 */
export async function labLeftovers(records: string[][], downAt: number): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  const namespaces = new Set<string>()
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    if (Number(startTime(pid) ?? Infinity) >= downAt) continue
    for (const kind of ['mnt', 'net']) {
      try {
        namespaces.add(readlinkSync(`/proc/${pid}/ns/${kind}`))
      } catch {
        // the process ended while we looked
      }
    }
  }
  const linkExists = async (name: string, netns = '-') =>
    (netns === '-' || existsSync(`/run/netns/${netns}`)) &&
    (await runCommand('ip', [...(netns === '-' ? [] : ['-n', netns]), 'link', 'show', 'dev', name])).code === 0
  const left: string[] = []
  for (const [host, kind, id, extra] of records) {
    const what = `${host} ${kind} ${id}`
    if (kind === 'netns' && (existsSync(`/run/netns/${id}`) || mountinfo.includes(` /run/netns/${id} `)))
      left.push(what)
    if ((kind === 'bridge' || kind === 'veth') && (await linkExists(id, kind === 'veth' ? extra : '-'))) left.push(what)
    if (kind === 'pid' && startTime(id) === extra) left.push(`${what} (still running)`)
    if (kind === 'mntns' && namespaces.has(`mnt:[${id}]`)) left.push(`${what} (a process is still in it)`)
    if (kind === 'netns-inode' && namespaces.has(`net:[${id}]`)) left.push(`${what} (a process is still in it)`)
    if (kind === 'claim' && existsSync(id)) left.push(what)
    if (kind === 'mount' && mountinfo.includes(` ${id} `)) left.push(`${what} (still mounted)`)
    if (kind === 'cgroup' && existsSync(id)) left.push(what)
    if (kind === 'dnat') {
      const rule = ['-t', 'nat', '-C', 'OUTPUT', '-d', `${id}/32`, '-p', 'tcp', '--dport', '22']
      if ((await runCommand('iptables', ['-w', ...rule, '-j', 'DNAT', '--to-destination', `${extra}:22`])).code === 0)
        left.push(what)
    }
  }
  return left
}

/** Now, in the clock ticks of /proc/PID/stat's start times (USER_HZ, 100 on Linux). */
export function ticksNow(): number {
  return Math.ceil(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100)
}

function startTime(pid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ')[19]
  } catch {
    return undefined
  }
}

/** Run a program with an argument array; its output and exit code (never rejects on a non-zero exit). */
export function runCommand(file: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({stdout, stderr, code: code ?? 128 + constants.signals[signal!]}))
    child.stdin.on('error', () => {}) // a program that does not read its input
    child.stdin.end(input ?? '')
  })
}
