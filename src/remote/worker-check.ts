import {messageOf} from '../errors.js'
import type {Inventory, WorkerSpec} from '../inventory/model.js'
import {runPool} from '../plan/pool.js'
import {SshConnections} from './connections.js'
import {RemoteError} from './errors.js'
import type {HostFacts, InitSystem} from './facts.js'
import type {FactsOptions} from './host.js'
import type {HostKeyStatus} from './host-key-policy.js'
import {foreignK3s} from './ownership.js'
import {ConnectError} from './ssh-connect.js'
import type {SudoAbility} from './sudo.js'

/**
 * `hybrid preflight --inventory`'s worker half: every worker checked in parallel (up to
 * spec.concurrency), each ending as one typed row (reachable, auth, host key, sudo, arch, init, tunnel
 * readiness, existing k3s) and its problems, one sentence each naming the worker and the fix. Nothing is
 * changed on any host; known_hosts is written only under hostKeyPolicy accept-new.
 */

export interface WorkerCheck {
  readonly name: string
  readonly address: string
  /** sshd answered (a handshake began). */
  readonly reachable: boolean
  readonly auth: 'ok' | 'refused' | 'no-key' | 'not-tried'
  readonly hostKey: HostKeyStatus | 'unknown' | 'changed' | 'not-checked'
  readonly sudo: SudoAbility | 'not-checked'
  /** k3s's name for the architecture, else what uname -m said; null before facts. */
  readonly arch: string | null
  readonly init: InitSystem | null
  /**
   * Tunnel mode: can sshd bind the API's remote forward? ready; fixable (hybrid will add the sshd
   * drop-in, network.manageSshd); blocked; unknown (not reached). Direct mode: not-needed.
   */
  readonly tunnel: 'ready' | 'fixable' | 'blocked' | 'unknown' | 'not-needed'
  /** The installed k3s version, 'none', or null before facts. */
  readonly k3s: string | null
  readonly facts: HostFacts | null
  /** The connection's failure, when there was one. */
  readonly error: {readonly code: string; readonly message: string} | null
  readonly problems: readonly string[]
  readonly elapsedMs: number
}

export interface WorkerChecks {
  /** Every worker can be used. */
  readonly ok: boolean
  readonly workers: readonly WorkerCheck[]
  readonly elapsedMs: number
}

export type CheckStage = 'connecting' | 'facts' | 'done'

export interface CheckWorkersOptions {
  /** Connections to use (and leave open); default: a set of its own, closed at the end. */
  readonly connections?: SshConnections
  /** Called as each worker moves on (for live rows on a terminal). */
  readonly onProgress?: (worker: string, stage: CheckStage, check?: WorkerCheck) => void
  readonly signal?: AbortSignal
  readonly env?: NodeJS.ProcessEnv
  /** Workers whose agent this cluster's records say hybrid installed (joined before the owner file existed). */
  readonly recorded?: ReadonlySet<string>
}

export type CheckedInventory = Pick<Inventory, 'name' | 'workers' | 'concurrency' | 'network' | 'controlPlane'>

/** What tells this cluster's k3s on a worker from another's (src/remote/ownership.ts). */
export interface OwnershipHints {
  /** The cluster's CA hash, when its control plane has run. */
  readonly ca?: string | null
  /** This cluster's records say hybrid installed the worker's agent. */
  readonly recorded?: boolean
}

export async function checkWorkers(
  inventory: CheckedInventory,
  options: CheckWorkersOptions = {},
): Promise<WorkerChecks> {
  const started = Date.now()
  const connections = options.connections ?? new SshConnections(options.env)
  const checks: WorkerCheck[] = []
  try {
    await runPool(
      inventory.workers,
      inventory.concurrency,
      async (worker, index) => {
        checks[index] = await checkWorker(worker, inventory, connections, options)
        options.onProgress?.(worker.name, 'done', checks[index])
      },
      options.signal,
    )
  } finally {
    if (!options.connections) await connections.closeAll()
  }
  const workers = inventory.workers.map((w, i) => checks[i] ?? notChecked(w))
  return {ok: workers.every((w) => w.problems.length === 0), workers, elapsedMs: Date.now() - started}
}

async function checkWorker(
  worker: WorkerSpec,
  inventory: CheckedInventory,
  connections: SshConnections,
  options: CheckWorkersOptions,
): Promise<WorkerCheck> {
  const started = Date.now()
  const base = {...notChecked(worker), tunnel: inventory.network.mode === 'tunnel' ? 'unknown' : 'not-needed'} as const
  options.onProgress?.(worker.name, 'connecting')
  let host
  try {
    host = await connections.host(worker)
  } catch (error) {
    return {...base, ...connectFailure(error), elapsedMs: Date.now() - started}
  }
  options.onProgress?.(worker.name, 'facts')
  let facts: HostFacts
  try {
    facts = await host.facts(factsOptions(inventory))
  } catch (error) {
    const message = messageOf(error)
    return {
      ...base,
      reachable: true,
      auth: 'ok',
      hostKey: host.hostKey,
      error: {code: error instanceof RemoteError ? error.code : 'REMOTE_COMMAND_FAILED', message},
      problems: [message],
      elapsedMs: Date.now() - started,
    }
  }
  const {tunnel, problems} = judgeFacts(worker, facts, inventory, {recorded: options.recorded?.has(worker.name)})
  return {
    ...base,
    reachable: true,
    auth: 'ok',
    hostKey: host.hostKey,
    sudo: facts.sudo.ability,
    arch: facts.arch.k3s ?? facts.arch.machine,
    init: facts.init.system,
    tunnel,
    k3s: facts.k3s.version ?? (facts.k3s.binary ? 'unknown version' : 'none'),
    facts,
    problems,
    elapsedMs: Date.now() - started,
  }
}

function notChecked(worker: WorkerSpec): WorkerCheck {
  return {
    name: worker.name,
    address: worker.address,
    reachable: false,
    auth: 'not-tried',
    hostKey: 'not-checked',
    sudo: 'not-checked',
    arch: null,
    init: null,
    tunnel: 'unknown',
    k3s: null,
    facts: null,
    error: null,
    problems: [],
    elapsedMs: 0,
  }
}

/** The columns a failed connection fills in: how far it got, and its sentence as the one problem. */
function connectFailure(error: unknown): Partial<WorkerCheck> {
  if (!(error instanceof RemoteError)) {
    const message = messageOf(error)
    return {error: {code: 'INTERNAL', message}, problems: [message]}
  }
  const stage = error instanceof ConnectError ? error.stage : 'tcp'
  const reachable = stage !== 'tcp' || error.code === 'SSH_HOST_KEY_UNKNOWN' || error.code === 'SSH_HOST_KEY_CHANGED'
  return {
    reachable,
    hostKey:
      error.code === 'SSH_HOST_KEY_UNKNOWN'
        ? 'unknown'
        : error.code === 'SSH_HOST_KEY_CHANGED'
          ? 'changed'
          : 'not-checked',
    auth: error.code === 'SSH_AUTH_REFUSED' ? 'refused' : error.code === 'SSH_NO_KEY' ? 'no-key' : 'not-tried',
    error: {code: error.code, message: error.message},
    problems: [error.message],
  }
}

/** What the facts depend on besides the host: in tunnel mode, the address and port the API is advertised on. */
export function factsOptions(inventory: CheckedInventory): FactsOptions {
  const {advertiseAddress, apiPort} = inventory.controlPlane
  return inventory.network.mode === 'tunnel' ? {advertiseAddress, apiPort} : {}
}

/**
 * What the facts say about using the worker: its tunnel readiness and every problem that stops hybrid
 * from joining it (one sentence each, naming the worker and the fix). `up` asks the same before joining.
 */
export function judgeFacts(
  worker: WorkerSpec,
  facts: HostFacts,
  inventory: CheckedInventory,
  hints: OwnershipHints = {},
): {tunnel: WorkerCheck['tunnel']; problems: string[]} {
  const tunnel = inventory.network.mode === 'tunnel' ? tunnelReadiness(facts, inventory) : 'not-needed'
  const foreign = foreignK3s(worker.name, facts.k3s, {
    owner: {cluster: inventory.name, ca: hints.ca ?? null},
    recorded: hints.recorded === true,
    adopt: worker.adopt === true,
  })
  // A k3s that is not ours is refused before anything else is judged: nothing of it may be touched.
  if (foreign) return {tunnel, problems: [foreign]}
  return {tunnel, problems: factProblems(worker, facts, inventory, tunnel)}
}

/** sshd must let a remote forward bind the advertised address (GatewayPorts clientspecified or yes). */
function tunnelReadiness(facts: HostFacts, inventory: CheckedInventory): WorkerCheck['tunnel'] {
  const {gatewayPorts, allowTcpForwarding} = facts.sshd
  const gatewayOk = gatewayPorts === 'clientspecified' || gatewayPorts === 'yes'
  const forwardingOk = allowTcpForwarding === 'yes' || allowTcpForwarding === 'all' || allowTcpForwarding === 'remote'
  const ours = facts.advertiseAddress?.ours === true
  // On hybrid's own address the port is held by this cluster's tunnel from an earlier run.
  const portFree = ours || facts.ports.find((p) => p.purpose === 'API tunnel')?.free !== false
  const addressFree = !facts.advertiseAddress || facts.advertiseAddress.interfaces.length === 0 || ours
  if (!portFree || !addressFree) return 'blocked'
  if (gatewayOk && forwardingOk) return 'ready'
  if (inventory.network.manageSshd && facts.sudo.ability !== 'none') return 'fixable'
  return 'blocked'
}

function factProblems(
  worker: WorkerSpec,
  facts: HostFacts,
  inventory: CheckedInventory,
  tunnel: WorkerCheck['tunnel'],
): string[] {
  const name = worker.name
  const problems: string[] = []
  if (facts.sudo.ability === 'none') problems.push(`${name}: ${facts.sudo.reason}`)
  if (!facts.arch.k3s)
    problems.push(
      `${name}: its architecture ${facts.arch.machine || '(unknown)'} has no k3s release (k3s ships amd64, arm64 and arm)`,
    )
  if (worker.service !== 'auto' && worker.service !== 'none' && worker.service !== facts.init.system)
    problems.push(
      `${name}: service is ${worker.service} but the host runs ${facts.init.system === 'none' ? 'no init system' : facts.init.system}; set the worker's service to auto`,
    )
  if (facts.k3s.server)
    problems.push(
      `${name}: a k3s server is installed there (k3s service); uninstall it (k3s-uninstall.sh) before using the host as a worker`,
    )
  for (const port of facts.ports) {
    if (port.free || port.purpose === 'API tunnel') continue
    if (facts.k3s.agent) continue // an agent from an earlier join holds its own ports
    problems.push(`${name}: port ${port.port} (${port.purpose}) is already in use there; stop what listens on it`)
  }
  if (tunnel === 'blocked') problems.push(...tunnelProblems(name, facts, inventory))
  const internal = worker.internalAddress
  const local = facts.interfaceAddresses
  if (internal && local && !local.some((a) => a.address === internal))
    problems.push(
      `${name}: its internalAddress ${internal} is not an address of any of its interfaces (${local.map((a) => a.address).join(', ') || 'none'}), and the kubelet refuses such a node IP; give one of them, or leave internalAddress out`,
    )
  return problems
}

function tunnelProblems(name: string, facts: HostFacts, inventory: CheckedInventory): string[] {
  const {advertiseAddress, apiPort} = inventory.controlPlane
  const problems: string[] = []
  const address = facts.advertiseAddress
  if (address && address.interfaces.length > 0 && !address.ours)
    problems.push(
      `${name}: ${advertiseAddress} is already an address of ${address.interfaces.join(', ')} there, so the API cannot be advertised on it; choose another controlPlane.advertiseAddress`,
    )
  if (!address?.ours && facts.ports.find((p) => p.purpose === 'API tunnel')?.free === false)
    problems.push(
      `${name}: ${advertiseAddress}:${apiPort} is already in use there, so the API tunnel cannot listen on it; stop what listens there or change controlPlane.apiPort`,
    )
  const {gatewayPorts, allowTcpForwarding, source} = facts.sshd
  const gatewayOk = gatewayPorts === 'clientspecified' || gatewayPorts === 'yes'
  const forwardingOk = allowTcpForwarding === 'yes' || allowTcpForwarding === 'all' || allowTcpForwarding === 'remote'
  if (gatewayOk && forwardingOk) return problems
  const found =
    source === 'unknown'
      ? `sshd's settings cannot be read there (sshd -T needs root, the config files are unreadable)`
      : [
          gatewayOk ? undefined : `sshd has GatewayPorts ${gatewayPorts}`,
          forwardingOk ? undefined : `AllowTcpForwarding ${allowTcpForwarding}`,
        ]
          .filter(Boolean)
          .join(' and ')
  const fix = inventory.network.manageSshd
    ? `hybrid cannot change it without root (${facts.sudo.reason ?? 'no sudo'})`
    : `set "GatewayPorts clientspecified" and "AllowTcpForwarding yes" in its sshd_config and reload sshd, or set network.manageSshd: true`
  problems.push(`${name}: ${found}, so the API tunnel cannot listen on ${advertiseAddress}:${apiPort} there; ${fix}`)
  return problems
}
