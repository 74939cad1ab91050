import {join} from 'node:path'

import {HybridError, messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import type {Host} from '../remote/host.js'
import {installUnpacked, unpackArchive} from '../snapshot/archive.js'
import {fetchSnapshot, listOn, type StoredSnapshot} from '../snapshot/remote-store.js'
import {unseal} from '../snapshot/sealed.js'
import {clusterToken, snapshotTargets} from '../snapshot/take.js'
import {pathExists} from '../util/path-exists.js'
import {
  CONTROL_PLANE_HOST,
  type ClusterContext,
  type InventoryInput,
  type OwnedState,
  type TokenFile,
} from './context.js'

/** `up --restore-from WORKER:ID`: restore that snapshot, and no other. */
export interface RestoreInput {
  readonly restoreFrom?: {readonly worker: string; readonly id: string}
}

/** restore-snapshot gives: the snapshot the cluster came back from, if it did. */
export interface Restored {
  readonly restored?: {readonly worker: string; readonly id: string; readonly createdAt: string}
}

type Needs = ClusterContext & InventoryInput & OwnedState & TokenFile & RestoreInput

/**
 * A sandbox with no cluster in its data dir (no CA) whose inventory names snapshot targets: look for
 * snapshots of this cluster there and restore the newest that verifies and decrypts (docs/architecture.md,
 * "Snapshots and restore"). Runs after the token is prepared (it is the key) and before k3s starts. A
 * snapshot refused (another cluster's, damaged, another token) changes nothing; when every one found is
 * refused, `up` stops rather than start a new cluster the workers' agents would not trust.
 */
export const restoreSnapshot: Phase<Needs, Restored> = {
  title: 'restore the cluster from a snapshot',
  async shouldRun(ctx) {
    if (ctx.restoreFrom) return true
    if (!ctx.inventory.controlPlane.snapshots) return {skip: 'no snapshot targets (spec.controlPlane.snapshots)'}
    if (await holdsCluster(ctx.inventory.controlPlane.dataDir)) return {skip: 'the data dir holds the cluster already'}
    return true
  },
  async run(ctx) {
    const {inventory} = ctx
    const from = ctx.restoreFrom
    if (from && (await holdsCluster(inventory.controlPlane.dataDir)))
      throw new HybridError(
        'SNAPSHOT_REFUSED',
        `--restore-from needs a sandbox without a cluster, but ${inventory.controlPlane.dataDir} holds one (its CA); nothing was restored`,
        {exitCode: 2},
      )
    const workers = from ? inventory.workers.filter((w) => w.name === from.worker) : snapshotTargets(inventory)
    if (from && workers.length === 0)
      throw new HybridError(
        'SNAPSHOT_NOT_FOUND',
        `--restore-from names ${from.worker}, which is not a worker of this inventory`,
        {
          exitCode: 2,
        },
      )
    const connections = new SshConnections()
    try {
      const listed = await Promise.all(
        workers.map(async (worker) => {
          try {
            return await listOn(await connections.host(worker), inventory.name)
          } catch (error) {
            ctx.logger.warn(`${worker.name}: cannot list its snapshots: ${messageOf(error).split('\n')[0]}`)
            return []
          }
        }),
      )
      const found = listed.flat().sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      const candidates = from ? found.filter((s) => s.id === from.id) : found
      if (candidates.length === 0) {
        if (from)
          throw new HybridError(
            'SNAPSHOT_NOT_FOUND',
            `${from.worker} has no snapshot ${from.id} of cluster ${inventory.name}`,
          )
        ctx.logger.info(
          `no snapshot of cluster ${inventory.name} on ${workers.map((w) => w.name).join(', ')}: a new cluster`,
        )
        return {}
      }
      const token = await clusterToken(inventory, ctx.paths)
      const refusals: string[] = []
      for (const candidate of candidates) {
        const worker = workers.find((w) => w.name === candidate.worker)!
        try {
          return await restoreOne(ctx, candidate, await connections.host(worker), token)
        } catch (error) {
          if (!(error instanceof HybridError) || error.code !== 'SNAPSHOT_REFUSED' || from) throw error
          ctx.logger.warn(error.message)
          refusals.push(error.message)
        }
      }
      throw new HybridError(
        'SNAPSHOT_REFUSED',
        `no snapshot of cluster ${inventory.name} could be restored (${refusals.length} refused; the newest: ${refusals[0]})`,
      )
    } finally {
      await connections.closeAll()
    }
  },
}

/** A data dir with a cluster CA in it holds a cluster: a restore would replace it, so none is made. */
function holdsCluster(dataDir: string): Promise<boolean> {
  return pathExists(join(dataDir, 'server', 'tls', 'server-ca.crt'))
}

async function restoreOne(ctx: Needs, candidate: StoredSnapshot, host: Host, token: string): Promise<Restored> {
  const where = `snapshot ${candidate.id} on ${candidate.worker}`
  if (candidate.problem) throw new HybridError('SNAPSHOT_REFUSED', candidate.problem)
  const bytes = await fetchSnapshot(host, ctx.inventory.name, candidate.id)
  if (!bytes) throw new HybridError('SNAPSHOT_REFUSED', `${where} is gone`)
  const {manifest, archive} = await unseal(bytes, token, ctx.inventory.name, where)
  if (manifest.id !== candidate.id)
    throw new HybridError('SNAPSHOT_REFUSED', `${where} says it is snapshot ${manifest.id}; nothing was restored`)
  const unpacked = await unpackArchive(archive)
  try {
    await ctx.wet(
      CONTROL_PLANE_HOST,
      `restore ${where} (taken ${manifest.createdAt}) into ${ctx.inventory.controlPlane.dataDir}`,
      async () => {
        const installed = await installUnpacked(unpacked, ctx.inventory.controlPlane.dataDir, ctx.paths)
        ctx.logger.info({installed}, `restored ${where}, taken ${manifest.createdAt} with k3s ${manifest.k3sVersion}`)
      },
    )
  } finally {
    await unpacked.remove()
  }
  return {restored: {worker: candidate.worker, id: candidate.id, createdAt: manifest.createdAt}}
}
