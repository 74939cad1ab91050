import {HybridError, messageOf} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {Plan, runPlan} from '../plan/index.js'
import type {ClusterContext, InventoryInput} from '../phases/context.js'
import {saveSnapshotPhase, type Saved} from '../phases/save-snapshot.js'
import {SshConnections} from '../remote/connections.js'
import {listOn} from '../snapshot/remote-store.js'
import {snapshotTargets, type TakenSnapshot} from '../snapshot/take.js'
import {withDeadline} from '../util/abort.js'
import {type ActionEnv, clusterContext} from './context.js'
import {planError} from './plan-error.js'

const SAVE = Plan.start<ClusterContext & InventoryInput>().then(saveSnapshotPhase)

/** `hybrid snapshot save`: one snapshot of the running cluster, stored on every target. */
export async function saveSnapshot(env: ActionEnv, inventory: Inventory): Promise<TakenSnapshot> {
  const input = {...clusterContext(env, inventory.name), inventory}
  const result = await runPlan(SAVE, input)
  if (result.status !== 'done') throw planError(result, '`hybrid snapshot save`')
  const taken = (input as typeof input & Saved).snapshot
  if (!taken) throw new HybridError('INTERNAL', 'the snapshot was taken, but not returned')
  return taken
}

/** One row of `hybrid snapshot list`. */
export interface SnapshotRow {
  readonly worker: string
  /** WORKER:ID is what `up --restore-from` takes. */
  readonly id: string
  readonly path: string
  readonly bytes: number
  readonly createdAt?: string
  readonly cluster?: string
  readonly k3sVersion?: string
  /** The file is no snapshot hybrid can read (its header). */
  readonly problem?: string
}

export interface SnapshotListResult {
  readonly cluster: string
  readonly snapshots: readonly SnapshotRow[]
  /** Workers that could not be asked, with why. */
  readonly unreachable: ReadonlyArray<{readonly worker: string; readonly error: string}>
}

/** Each worker is given this long to answer. */
const LIST_SECONDS = 20

/**
 * `hybrid snapshot list`: the snapshots of the cluster on its snapshot targets (every worker when none are
 * named), newest first. Reads only; a worker that cannot be asked is named.
 */
export async function listSnapshots(inventory: Inventory): Promise<SnapshotListResult> {
  const targets = snapshotTargets(inventory)
  const workers = targets.length > 0 ? targets : [...inventory.workers]
  const connections = new SshConnections()
  const unreachable: Array<{worker: string; error: string}> = []
  try {
    const found = await Promise.all(
      workers.map(async (worker) => {
        try {
          const ask = async () => listOn(await connections.host(worker), inventory.name, LIST_SECONDS)
          return await withDeadline(ask(), LIST_SECONDS * 1000, () => new Error(`no answer within ${LIST_SECONDS} s`))
        } catch (error) {
          unreachable.push({worker: worker.name, error: messageOf(error).split('\n')[0]})
          return []
        }
      }),
    )
    const snapshots = found
      .flat()
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : a.worker.localeCompare(b.worker)))
      .map((s) => ({
        worker: s.worker,
        id: s.id,
        path: s.path,
        bytes: s.bytes,
        ...(s.manifest
          ? {createdAt: s.manifest.createdAt, cluster: s.manifest.cluster, k3sVersion: s.manifest.k3sVersion}
          : {}),
        ...(s.problem ? {problem: s.problem} : {}),
      }))
    return {cluster: inventory.name, snapshots, unreachable}
  } finally {
    await connections.closeAll()
  }
}
