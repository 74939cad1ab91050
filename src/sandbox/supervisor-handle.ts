import type {Logger} from '../log/logger.js'
import {type ClusterPaths, type LaunchSpec, updateState} from '../state/cluster-state.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {ownCommandLine} from '../util/processes.js'
import {restartPolicyFromEnv} from './restart-policy.js'
import {ServerUpgrades} from './server-upgrades.js'
import {Supervisor, type SupervisorEvent} from './supervisor.js'
import {WorkerTunnels} from './worker-tunnels.js'

/** A supervisor as phases and actions see it, whether it runs in this process or as a detached child. */
export interface SupervisorHandle {
  /** The process that supervises (this one, or the child). */
  readonly pid: number
  readonly detached: boolean
  /** Settles once: ready, or why k3s never got there (a K3sFailure). */
  readonly ready: Promise<void>
  /** Stop k3s (and, for a child, the child itself); resolves when they are gone. */
  stop(): Promise<void>
  /** In this process only: the supervisor itself (counters, restarts, `done`). */
  readonly local?: Supervisor
  /** A detached child only: let this process exit without it (close the IPC channel, unref). */
  release?(): void
}

export interface LocalSupervisorOptions {
  readonly cluster: string
  readonly paths: ClusterPaths
  readonly launch: LaunchSpec
  readonly logger: Logger
  /** This process is the detached supervisor `up --detach` started. */
  readonly detached: boolean
}

/** How long the first start may take to become ready: HYBRID_READY_TIMEOUT_SECONDS, default 5 minutes. */
function readyTimeoutMs(): number {
  const seconds = Number(process.env.HYBRID_READY_TIMEOUT_SECONDS)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 300_000
}

/** The supervisor in this process: it records itself as the cluster's owner, and each k3s run in the state. */
export async function startLocalSupervisor(options: LocalSupervisorOptions): Promise<SupervisorHandle> {
  const {cluster, paths} = options
  const supervisor = new Supervisor({
    launch: options.launch,
    logFile: paths.k3sLog,
    countersFile: paths.counters,
    policy: restartPolicyFromEnv(),
    readyTimeoutMs: readyTimeoutMs(),
    logger: options.logger,
    onEvent: (event) => recordEvent(cluster, event),
  })
  const startedAt = new Date().toISOString()
  await updateState(cluster, (s) => ({
    ...s,
    supervisor: {pid: process.pid, startedAt, detached: options.detached, argv: ownCommandLine()},
  }))
  await writeFileAtomic(paths.pidfile, `${process.pid}\n`, 0o600)
  void supervisor.start()
  // The workers' API tunnels live as long as k3s does, in the same process.
  const tunnels = new WorkerTunnels(cluster, options.logger)
  tunnels.start()
  // `up` asks for another k3s binary through a file (an upgrade); the supervisor follows it.
  const upgrades = new ServerUpgrades(cluster, supervisor, options.logger)
  upgrades.start()
  const stop = async () => {
    await upgrades.stop()
    await tunnels.stop()
    await supervisor.stop()
  }
  return {pid: process.pid, detached: false, ready: supervisor.ready, stop, local: supervisor}
}

/** Each k3s run and restart, in the state file (for `status`, and for `down` after a crash). */
async function recordEvent(cluster: string, event: SupervisorEvent): Promise<void> {
  const now = new Date().toISOString()
  if (event.type === 'started')
    await updateState(cluster, (s) => ({
      ...s,
      phase: s.phase === 'ready' ? 'ready' : 'starting',
      k3s: {pid: event.pid, startedAt: now, restarts: event.restarts},
    }))
  else if (event.type === 'ready') await updateState(cluster, (s) => ({...s, phase: 'ready'}))
  else if (event.type === 'restarting')
    await updateState(cluster, (s) => ({...s, k3s: s.k3s ? {...s.k3s, restarts: event.restarts} : s.k3s}))
}
