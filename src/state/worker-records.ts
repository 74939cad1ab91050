import {mkdir, readdir, rename, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {isDeepStrictEqual} from 'node:util'

import lockfile from 'proper-lockfile'

import type {AgentRecord} from '../agent/install.js'
import {HybridError, messageOf} from '../errors.js'
import type {WorkerSpec} from '../inventory/model.js'
import type {AddressRecord} from '../tunnel/advertised-address.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {clusterPaths, readStateText} from './cluster-state.js'

/**
 * What hybrid installed on each worker, one file per worker under `clusters/<name>/workers/<worker>.json`,
 * so that `down` and `workers remove` undo it from the record alone, also after a crash. Each change to a
 * worker's record is made under that worker's lock, so an `up`, a `workers add` and a `workers remove`
 * running at once never lose one another's writes; the supervisor only reads the records (to keep the
 * tunnels they ask for) and writes its own file (tunnels.json).
 */

/** One file hybrid wrote on the worker, and how it must be undone. */
export interface FileInstalled {
  readonly path: string
  /** The sha256 of what hybrid wrote (a re-run compares before writing). */
  readonly sha256?: string
}

/** The tunnel the supervisor keeps for this worker: sshd on the worker listens on bind, leading to target. */
export interface TunnelRequest {
  readonly bindAddress: string
  readonly bindPort: number
  /** The API's port on the sandbox's 127.0.0.1. */
  readonly targetPort: number
}

export interface WorkerRecord {
  readonly version: 1
  readonly worker: string
  /** How to reach it (no secret is part of a WorkerSpec: passwords come from the environment). */
  readonly spec: WorkerSpec
  /** joining: some steps done; joined: its Node was Ready; removing: being taken out. */
  readonly phase: 'joining' | 'joined' | 'removing'
  readonly updatedAt: string
  readonly joinedAt?: string
  /** The Node's name in the cluster (the worker's name). */
  readonly node: string
  readonly tunnel?: TunnelRequest
  /**
   * The Node's password (agent/node-password.ts), written to the worker's /etc/rancher/node/password before
   * its agent first starts: a host replaced under this name gets it again, so the server's node-password
   * secret still matches. Forgotten with the record, once the Node and its secret are deleted.
   */
  readonly nodePassword?: string
  /**
   * The k3s version an upgrade's rollout finished on this worker (drained, restarted, Ready on it,
   * uncordoned); while the state records an upgrade to another version, the worker waits for its turn.
   */
  readonly k3sVersion?: string
  /** What is in place on the worker, each recorded right after it was done. */
  readonly installed: Installed
}

export interface Installed {
  /** The sshd drop-in that lets the tunnel bind the advertised address (absent: sshd already allowed it). */
  readonly sshdDropIn?: FileInstalled
  /** Where the advertised address was put (tunnel mode). */
  readonly address?: AddressRecord
  /** /usr/local/bin/k3s and its digest. */
  readonly binary?: FileInstalled
  /** The agent's service, files and directories, as its installer listed them before installing. */
  readonly agent?: AgentRecord
  /** registries.yaml, the agent's uploaded files and image archives hybrid wrote (src/agent/agent-extras.ts). */
  readonly extras?: readonly FileInstalled[]
}

function workersDir(cluster: string): string {
  return clusterPaths(cluster).workers
}

function recordFile(cluster: string, worker: string): string {
  return join(workersDir(cluster), `${worker}.json`)
}

/** The worker's record, or undefined when hybrid has none (never joined, or removed). */
export async function readWorkerRecord(cluster: string, worker: string): Promise<WorkerRecord | undefined> {
  const file = recordFile(cluster, worker)
  const text = await readStateText(file, `the record of worker ${worker}`)
  if (text === undefined) return undefined
  const problem = recordProblem(text, worker)
  if (problem === undefined) return JSON.parse(text) as WorkerRecord
  throw new HybridError(
    'STATE_INVALID',
    `the record of worker ${worker} (${file}) is unusable: ${problem}; remove the file once the worker is cleaned up by hand`,
  )
}

/** Why a record's text is unusable (does not parse, or lacks what every reader relies on), or undefined. */
function recordProblem(text: string, worker: string): string | undefined {
  let record: Partial<WorkerRecord>
  try {
    record = JSON.parse(text) as Partial<WorkerRecord>
  } catch (error) {
    return messageOf(error)
  }
  if (typeof record !== 'object' || record === null) return 'not a JSON object'
  if (record.version !== 1 || record.worker !== worker) return 'not a worker record of this version'
  const spec = record.spec as Partial<WorkerSpec> | undefined
  if (typeof spec !== 'object' || spec === null || typeof spec.address !== 'string' || typeof spec.ssh !== 'object')
    return 'it has no usable spec'
  if (typeof record.node !== 'string' || typeof record.installed !== 'object' || record.installed === null)
    return 'it lacks its node or installed fields'
  return undefined
}

/** A record that was moved aside by `listWorkerRecords`, because it was unusable. */
export interface MovedAside {
  readonly worker: string
  readonly movedTo: string
  readonly reason: string
}

/**
 * The records a long-lived reader (the supervisor) read before, by worker, with the file's inode, size and
 * modification time: a record is only ever replaced whole by a rename, so a file whose stamp is unchanged
 * holds the same record and is not read again.
 */
export type RecordCache = Map<string, {stamp: string; record: WorkerRecord}>

/**
 * Every worker record of the cluster, sorted by worker name. A record being written is read whole (rename).
 * A record that is unusable is moved aside to `<worker>.json.corrupt-<time>` (never deleted), under the
 * worker's lock, and `onMovedAside` is told; the others are still returned, so one bad file stops neither
 * the supervisor's tunnels nor `status`. With a `cache`, only records that changed since the last call are
 * read; with `changed` as well (the workers whose files a directory watch saw change), the others are taken
 * from the cache without even a stat, so a burst of writes to one record costs nothing per other worker.
 */
export async function listWorkerRecords(
  cluster: string,
  onMovedAside?: (moved: MovedAside) => void,
  cache?: RecordCache,
  changed?: ReadonlySet<string>,
): Promise<WorkerRecord[]> {
  let names: string[]
  try {
    names = await readdir(workersDir(cluster))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const workers = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length))
  for (const w of cache?.keys() ?? []) if (!workers.includes(w)) cache?.delete(w)
  const records = await Promise.all(
    workers.map(async (w) => {
      try {
        const known = changed && !changed.has(w) ? cache?.get(w) : undefined
        if (known) return known.record
        return cache ? await readChanged(cluster, w, cache) : await readWorkerRecord(cluster, w)
      } catch (error) {
        if (!(error instanceof HybridError) || error.code !== 'STATE_INVALID') throw error
        const moved = await moveAside(cluster, w)
        if (moved) onMovedAside?.(moved)
        return undefined
      }
    }),
  )
  return records.filter((r): r is WorkerRecord => r !== undefined).sort((a, b) => a.worker.localeCompare(b.worker))
}

/** The worker's record from `cache` when its file is unchanged, else read (and remembered). */
async function readChanged(cluster: string, worker: string, cache: RecordCache): Promise<WorkerRecord | undefined> {
  const now = await stat(recordFile(cluster, worker), {bigint: true}).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw error
  })
  if (!now) return undefined
  const stamp = `${now.ino}:${now.size}:${now.mtimeNs}`
  const known = cache.get(worker)
  if (known?.stamp === stamp) return known.record
  cache.delete(worker)
  // Replaced between the stat and the read: the next call sees another stamp and reads it again.
  const record = await readWorkerRecord(cluster, worker)
  if (record) cache.set(worker, {stamp, record})
  return record
}

/** Rename an unusable record aside, under its lock and only if it is still unusable (a writer may have fixed it). */
async function moveAside(cluster: string, worker: string): Promise<MovedAside | undefined> {
  const file = recordFile(cluster, worker)
  const release = await lockRecord(file)
  try {
    const text = await readStateText(file, `the record of worker ${worker}`)
    const reason = text === undefined ? undefined : recordProblem(text, worker)
    if (reason === undefined) return undefined
    const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    await rename(file, movedTo)
    return {worker, movedTo, reason}
  } finally {
    await release()
  }
}

/** The records moved aside in the cluster's workers directory (`<worker>.json.corrupt-<time>`), sorted. */
export async function listMovedAsideRecords(cluster: string): Promise<string[]> {
  try {
    const names = await readdir(workersDir(cluster))
    return names
      .filter((n) => /\.json\.corrupt-/.test(n))
      .sort()
      .map((n) => join(workersDir(cluster), n))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

/**
 * Change a worker's record under its lock: `change` gets the current record (undefined when there is
 * none) and returns the next one, or null to remove it. Returns what was written.
 */
export async function changeWorkerRecord(
  cluster: string,
  worker: string,
  change: (record: WorkerRecord | undefined) => WorkerRecord | null,
): Promise<WorkerRecord | null> {
  const dir = workersDir(cluster)
  await mkdir(dir, {recursive: true, mode: 0o700})
  const file = recordFile(cluster, worker)
  const release = await lockRecord(file)
  try {
    const current = await readWorkerRecord(cluster, worker)
    const next = change(current)
    if (next === null) await rm(file, {force: true})
    // A re-run records what is already recorded: the file is left as it is.
    else if (!current || !isDeepStrictEqual({...next, updatedAt: ''}, {...current, updatedAt: ''}))
      await writeFileAtomic(file, `${JSON.stringify({...next, updatedAt: new Date().toISOString()}, null, 2)}\n`, 0o600)
    return next
  } finally {
    await release()
  }
}

/** A worker's lock: a directory beside the record; a holder that died leaves it stale after 10 s. */
function lockRecord(file: string): Promise<() => Promise<void>> {
  return lockfile.lock(file, {realpath: false, stale: 10_000, retries: {retries: 50, minTimeout: 50, maxTimeout: 500}})
}

/** A fresh record for a worker that is being joined. */
export function newWorkerRecord(spec: WorkerSpec): WorkerRecord {
  return {
    version: 1,
    worker: spec.name,
    spec,
    phase: 'joining',
    updatedAt: new Date().toISOString(),
    node: spec.name,
    installed: {},
  }
}

/** Record one more thing installed on the worker (creating the record when it is the first). */
export function recordInstalled(cluster: string, spec: WorkerSpec, installed: Partial<Installed>): Promise<unknown> {
  return changeWorkerRecord(cluster, spec.name, (r) => {
    const base = r ?? newWorkerRecord(spec)
    return {...base, spec, installed: {...base.installed, ...installed}}
  })
}

/** Forget one thing once it was undone, so an interrupted removal resumes where it stopped. */
export function forgetInstalled(cluster: string, worker: string, key: keyof Installed): Promise<unknown> {
  return changeWorkerRecord(cluster, worker, (r) => {
    if (!r) return null
    const installed = {...r.installed}
    delete installed[key]
    return {...r, installed}
  })
}
