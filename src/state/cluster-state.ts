import {mkdir, readFile, rm, rmdir} from 'node:fs/promises'
import {join} from 'node:path'

import {HybridError, messageOf} from '../errors.js'
import type {Location} from '../sandbox/location.js'
import type {AppliedRecord} from '../sandbox/workarounds/workaround.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {stateDir} from './paths.js'

/** How the supervisor starts k3s: everything it needs, so a detached supervisor needs nothing else. */
export interface LaunchSpec {
  /** Absolute path of the k3s binary. */
  readonly binary: string
  /** Arguments after the binary: `server --config <dataDir>/config.yaml` plus any extraArgs left on the command line. */
  readonly args: readonly string[]
  /** Interceptor rules (JSON form of the interceptor's `Rule`); none: k3s runs without the interceptor. */
  readonly rules: readonly unknown[]
  /** Variables added to hybrid's own environment for k3s (the workarounds'). */
  readonly env: Readonly<Record<string, string>>
  /** The kubeconfig k3s writes (write-kubeconfig), through which readiness is checked. */
  readonly k3sKubeconfig: string
  /** The sandbox's own Node, waited for when the server runs an agent; absent when agentless. */
  readonly nodeName?: string
}

export interface ProcessRecord {
  readonly pid: number
  /** ISO time the process started. */
  readonly startedAt: string
}

/**
 * What hybrid applied for one cluster: enough for `status`, for a second `up` to see that nothing needs
 * changing, and for `down` to undo everything even after hybrid itself crashed.
 *
 * Writers: the `up` process until it starts the supervisor; from then on only the supervisor (in the
 * foreground `up`, or the detached child), until `down` removes the file.
 */
export interface ClusterState {
  /** 2 since workers join: their records live in `workers/` beside the state (state/worker-records.ts). */
  readonly version: typeof STATE_VERSION
  readonly cluster: string
  /** Absolute path of the inventory `up` used. */
  readonly inventory: string
  /** The inventory's control-plane settings (`controlPlaneSettings`) this cluster was brought up with. */
  readonly settings: Readonly<Record<string, unknown>>
  readonly dataDir: string
  readonly apiPort: number
  /** ISO time `up` started preparing this cluster. */
  readonly createdAt: string
  /** Applied workarounds in the order they were applied; undone in reverse. */
  readonly workarounds: readonly AppliedRecord[]
  /** The user's kubeconfig for this cluster (written once the API is ready). */
  readonly kubeconfig: string
  readonly launch?: LaunchSpec
  /**
   * The process that owns the cluster: the `up` preparing it, then the supervisor (the foreground `up`,
   * or the detached child). `argv` lets `down` check a recorded pid still is that process.
   */
  readonly supervisor?: ProcessRecord & {readonly detached: boolean; readonly argv: readonly string[]}
  /** Where the supervisor and k3s live (pid namespace, addresses): a hybrid elsewhere must not act on their pids. */
  readonly location?: Location
  readonly k3s?: ProcessRecord & {readonly restarts: number}
  /** preparing: phases running; starting: k3s launched; ready: API (and Node) ready; stopped: given up. */
  readonly phase: 'preparing' | 'starting' | 'ready' | 'stopped'
  /** Why the supervisor gave up, one sentence (phase `stopped`). */
  readonly failure?: string
  /**
   * Tunnel mode with an agent in the sandbox: the advertised address hybrid put on the sandbox's own
   * loopback device, so its agent reaches the API there (undone by `down`).
   */
  readonly sandboxAddress?: {readonly address: string; readonly device: string}
  /**
   * A k3s upgrade under way (docs/architecture.md, "Upgrades"): set when the server moves to `to`, cleared by
   * the `up` whose rollout leaves no worker on another version; while it is set, `up` goes on with the rollout.
   */
  readonly upgrade?: UpgradeMarker
}

export interface UpgradeMarker {
  readonly from: string
  readonly to: string
  readonly startedAt: string
}

/** The state format this hybrid writes; it reads version 1 too (a cluster brought up before workers joined). */
export const STATE_VERSION = 2

/** The files of one cluster under `stateDir()/clusters/<name>/`. */
export interface ClusterPaths {
  readonly dir: string
  readonly state: string
  readonly kubeconfig: string
  /** k3s's stdout and stderr. */
  readonly k3sLog: string
  /** The detached supervisor's own output. */
  readonly supervisorLog: string
  readonly pidfile: string
  /** Interceptor counters, refreshed by the supervisor for `hybrid status`. */
  readonly counters: string
  /** The workers' API tunnels as the supervisor sees them (state/tunnel-status.ts). */
  readonly tunnels: string
  /** One record per joined worker (state/worker-records.ts). */
  readonly workers: string
  /** Where workarounds keep their files (fake /proc/sys tree, PATH directories). */
  readonly workDir: string
  /** The cluster token when the inventory takes it from an environment variable. */
  readonly token: string
  /** The last snapshot taken from this sandbox (src/snapshot/take.ts), for `status`. */
  readonly lastSnapshot: string
  /** `up`'s request to the supervisor to restart k3s on another binary (state/server-upgrade.ts). */
  readonly upgradeRequest: string
}

export function clusterPaths(cluster: string): ClusterPaths {
  const dir = join(stateDir(), 'clusters', cluster)
  return {
    dir,
    state: join(dir, 'state.json'),
    kubeconfig: join(dir, 'kubeconfig'),
    k3sLog: join(dir, 'k3s.log'),
    supervisorLog: join(dir, 'supervisor.log'),
    pidfile: join(dir, 'supervisor.pid'),
    counters: join(dir, 'counters.json'),
    tunnels: join(dir, 'tunnels.json'),
    workers: join(dir, 'workers'),
    workDir: join(dir, 'work'),
    token: join(dir, 'token'),
    lastSnapshot: join(dir, 'snapshots.json'),
    upgradeRequest: join(dir, 'server-upgrade.json'),
  }
}

/** A state file's text, or undefined when there is none; any other failure says which file (`what`) it was. */
export async function readStateText(file: string, what: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new HybridError('STATE_UNREADABLE', `cannot read ${what} (${file}): ${messageOf(error)}`)
  }
}

/** The cluster's state, or undefined when it has none (never brought up, or brought down). */
export async function readState(cluster: string): Promise<ClusterState | undefined> {
  const file = clusterPaths(cluster).state
  const text = await readStateText(file, `the state of cluster ${cluster}`)
  if (text === undefined) return undefined
  let state: ClusterState
  try {
    state = upgrade(JSON.parse(text) as ClusterState | (Omit<ClusterState, 'version'> & {version: 1}))
  } catch (error) {
    throw new HybridError(
      'STATE_INVALID',
      `the state file ${file} is not valid JSON (${messageOf(error)}); \`hybrid down\` stops what it can find without it and moves it aside`,
    )
  }
  if (state.version !== STATE_VERSION || state.cluster !== cluster || !Array.isArray(state.workarounds)) {
    throw new HybridError('STATE_VERSION_UNKNOWN', `the state file ${file} was not written by this version of hybrid`)
  }
  return state
}

/** A version-1 state reads as version 2: it has no worker records and no sandbox address, which is what 2 says. */
function upgrade(state: ClusterState | (Omit<ClusterState, 'version'> & {version: 1})): ClusterState {
  return state.version === 1 ? {...state, version: STATE_VERSION} : state
}

/** Write the whole state atomically, 0600 in a 0700 directory (it names files that hold secrets). */
export async function writeState(state: ClusterState): Promise<void> {
  const paths = clusterPaths(state.cluster)
  await mkdir(paths.dir, {recursive: true, mode: 0o700})
  await writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`, 0o600)
}

/**
 * Write the state of a cluster that has none: of two `up`s racing for one cluster exactly one gets
 * here; the other is told who owns it.
 */
export async function createState(state: ClusterState): Promise<void> {
  const paths = clusterPaths(state.cluster)
  await mkdir(paths.dir, {recursive: true, mode: 0o700})
  try {
    await writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`, 0o600, {exclusive: true})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const owner = (await readState(state.cluster).catch(() => undefined))?.supervisor?.pid
    throw new HybridError(
      'CLUSTER_BUSY',
      `cluster ${state.cluster} is being brought up by another hybrid${owner ? ` (pid ${owner})` : ''} at this moment; \`hybrid status\` shows how it goes`,
    )
  }
}

/** Read, change and write back. Only the current writer (see ClusterState) calls this. */
export async function updateState(
  cluster: string,
  change: (state: ClusterState) => ClusterState,
): Promise<ClusterState> {
  const state = await readState(cluster)
  if (!state) throw new HybridError('CLUSTER_GONE', `cluster ${cluster} has no state (it was brought down meanwhile)`)
  const next = change(state)
  await writeState(next)
  return next
}

/** Append one applied workaround: called right after `apply`, before the next step. */
export function recordWorkaround(cluster: string, record: AppliedRecord): Promise<ClusterState> {
  return updateState(cluster, (s) => ({
    ...s,
    workarounds: [...s.workarounds.filter((r) => r.id !== record.id), record],
  }))
}

/** Forget one workaround once it has been undone, so an interrupted `down` resumes where it stopped. */
export function forgetWorkaround(cluster: string, id: string): Promise<ClusterState> {
  return updateState(cluster, (s) => ({...s, workarounds: s.workarounds.filter((r) => r.id !== id)}))
}

/**
 * Remove what a running cluster keeps in its state directory (state, pidfile, counters, kubeconfig, token
 * copy, workaround files); the logs stay for post-mortems. Safe to call twice.
 */
export async function removeRuntimeFiles(cluster: string): Promise<void> {
  const paths = clusterPaths(cluster)
  for (const file of [
    paths.pidfile,
    paths.counters,
    paths.tunnels,
    paths.kubeconfig,
    paths.token,
    paths.upgradeRequest,
    paths.lastSnapshot,
  ])
    await rm(file, {force: true})
  await rmdir(paths.workers).catch(() => {}) // kept while a worker's record is (it could not be reached)
  await rm(paths.workDir, {recursive: true, force: true})
  await rm(paths.state, {force: true})
  await rmdir(paths.dir).catch(() => {}) // gone when no log is left in it
}
