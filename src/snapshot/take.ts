import {readFile} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import type {Inventory, WorkerSpec} from '../inventory/model.js'
import type {Logger} from '../log/logger.js'
import type {SshConnections} from '../remote/connections.js'
import type {ClusterPaths} from '../state/cluster-state.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {takeSecretEnv} from '../util/secret-env.js'
import {buildArchive} from './archive.js'
import {newSnapshotId, storeSnapshot} from './remote-store.js'
import {seal, type SnapshotManifest} from './sealed.js'

/** Where one copy went, or why it did not. */
export interface SnapshotCopy {
  readonly worker: string
  readonly path?: string
  readonly sha256?: string
  readonly error?: string
}

/** One snapshot taken: its manifest, its size sealed, and each target's copy. */
export interface TakenSnapshot {
  readonly manifest: SnapshotManifest
  /** Bytes of the sealed file on each worker. */
  readonly bytes: number
  readonly copies: readonly SnapshotCopy[]
}

/**
 * The cluster token's text, the key's source: the token file, or for spec.token.env the copy `up` keeps in
 * the cluster's state directory (the variable itself is taken out of the environment of hybrid's children).
 */
export async function clusterToken(inventory: Inventory, paths: ClusterPaths): Promise<string> {
  const source = inventory.token
  const read = (file: string) => readFile(file, 'utf8').then((t) => t.trim())
  try {
    if (source.kind === 'file') return await read(source.file)
    const fromEnv = takeSecretEnv(source.env)?.trim()
    return fromEnv || (await read(paths.token))
  } catch (error) {
    throw new HybridError('TOKEN_UNREADABLE', `cannot read the cluster token, the snapshots' key: ${messageOf(error)}`)
  }
}

/** The snapshot targets of the inventory, as workers. */
export function snapshotTargets(inventory: Inventory): WorkerSpec[] {
  const to = inventory.controlPlane.snapshots?.to ?? []
  return inventory.workers.filter((w) => to.includes(w.name))
}

/**
 * Take a snapshot of the running cluster and store it on every target (all at once). A target that fails
 * is named in the result; the snapshot counts as taken when one copy is stored and verified.
 */
export async function takeSnapshot(
  inventory: Inventory,
  paths: ClusterPaths,
  connections: SshConnections,
  logger: Logger,
): Promise<TakenSnapshot> {
  const targets = snapshotTargets(inventory)
  if (targets.length === 0)
    throw new HybridError(
      'SNAPSHOT_NOT_CONFIGURED',
      `cluster ${inventory.name} has no snapshot targets: set spec.controlPlane.snapshots.to to some of its workers`,
      {exitCode: 2},
    )
  const token = await clusterToken(inventory, paths)
  const archive = await buildArchive(inventory.controlPlane.dataDir, paths)
  const now = new Date()
  const id = newSnapshotId(now)
  const sealed = await seal(archive, token, {
    id,
    cluster: inventory.name,
    k3sVersion: inventory.k3s.version,
    createdAt: now.toISOString(),
  })
  const keep = inventory.controlPlane.snapshots?.keep ?? 5
  const copies = await Promise.all(
    targets.map(async (worker): Promise<SnapshotCopy> => {
      try {
        const host = await connections.host(worker)
        const stored = await storeSnapshot(host, inventory.name, id, sealed.bytes, keep)
        if (stored.removed.length > 0)
          logger.info(`${worker.name}: removed older snapshots ${stored.removed.join(', ')}`)
        return {worker: worker.name, path: stored.path, sha256: stored.sha256}
      } catch (error) {
        return {worker: worker.name, error: messageOf(error).split('\n')[0]}
      }
    }),
  )
  const taken = {manifest: sealed.manifest, bytes: sealed.bytes.byteLength, copies}
  if (!copies.some((c) => c.path)) {
    throw new HybridError(
      'SNAPSHOT_FAILED',
      `snapshot ${id} could not be stored on any worker: ${copies.map((c) => c.error).join('; ')}`,
    )
  }
  await recordLastSnapshot(paths, taken)
  return taken
}

async function recordLastSnapshot(paths: ClusterPaths, taken: TakenSnapshot): Promise<void> {
  await writeFileAtomic(paths.lastSnapshot, `${JSON.stringify({last: taken}, null, 2)}\n`, 0o600)
}

/** The last snapshot this sandbox took, if any (an unreadable record reads as none). */
export async function readLastSnapshot(paths: ClusterPaths): Promise<TakenSnapshot | undefined> {
  try {
    return (JSON.parse(await readFile(paths.lastSnapshot, 'utf8')) as {last?: TakenSnapshot}).last
  } catch {
    return undefined
  }
}
