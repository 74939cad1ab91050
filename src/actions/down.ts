import type {Inventory} from '../inventory/model.js'
import {type Change, Plan, runPlan} from '../plan/index.js'
import type {ClusterContext} from '../phases/context.js'
import {type LeaveSelection, leaveWorkers} from '../phases/leave-workers.js'
import {loadState} from '../phases/load-state.js'
import {removeSandboxAddress} from '../phases/remove-sandbox-address.js'
import {removeState} from '../phases/remove-state.js'
import {stopControlPlane} from '../phases/stop-control-plane.js'
import {readState} from '../state/cluster-state.js'
import {listWorkerRecords} from '../state/worker-records.js'
import {HybridError} from '../errors.js'
import {undoWorkarounds} from '../phases/undo-workarounds.js'
import {type ActionEnv, clusterContext} from './context.js'
import {corruptDownError, downFromCorruptState} from './down-corrupt.js'
import {throwIfHostsFailed} from './partly-done.js'
import {planError} from './plan-error.js'
import {lockCluster} from './run-lock.js'

export interface DownResult {
  readonly cluster: string
  /** down: it was up (or had leftovers) and is now down; not-up: there was nothing to do. */
  readonly outcome: 'down' | 'not-up' | 'dry-run'
  /** What changed (under --dry-run: what would change), one sentence each. */
  readonly changes: readonly string[]
  /** Workers whose installs stay (plain `down`); `down --uninstall-workers` takes them out. */
  readonly keptWorkers: readonly string[]
  /** The same changes with their phase and host, for the human rendering (not part of the JSON result). */
  readonly planChanges?: readonly Change[]
}

/**
 * Stop everything in reverse order and undo every workaround, from the state file alone. The workers
 * keep what hybrid installed on them, and their records, so that the next `up` finds them joined; with
 * --uninstall-workers they are taken out first (from their records alone), while the tunnels still run.
 */
const STOP = Plan.start<ClusterContext & LeaveSelection>()
  .then(loadState)
  .then(stopControlPlane)
  .then(removeSandboxAddress)
  .then(undoWorkarounds)
  .then(removeState)
const UNINSTALL_AND_STOP = Plan.start<ClusterContext & LeaveSelection>()
  .then(loadState)
  .then(leaveWorkers)
  .then(stopControlPlane)
  .then(removeSandboxAddress)
  .then(undoWorkarounds)
  .then(removeState)

export async function down(
  env: ActionEnv,
  target: {
    readonly cluster: string
    readonly inventory?: Inventory
    readonly dryRun: boolean
    readonly uninstallWorkers: boolean
  },
): Promise<DownResult> {
  const {cluster} = target
  const concurrency = target.inventory?.concurrency
  const ctx = {...clusterContext(env, cluster, {dryRun: target.dryRun, concurrency}), drainNodes: false}
  const lock = await lockCluster(env, cluster, target.dryRun)
  let result
  try {
    if (!target.dryRun && (await stateIsCorrupt(cluster))) {
      const salvaged = await downFromCorruptState(cluster, ctx.paths)
      for (const change of salvaged.changes) env.logger.info(change)
      if (salvaged.notDone.length > 0) throw corruptDownError(cluster, salvaged)
      return {cluster, outcome: 'down', changes: salvaged.changes, keptWorkers: []}
    }
    result = await runPlan(target.uninstallWorkers ? UNINSTALL_AND_STOP : STOP, ctx)
  } finally {
    await lock?.release()
  }
  if (result.status !== 'done') throw planError(result, '`hybrid down`')
  const changes = result.changes.map((c) => c.sentence)
  // Under --dry-run with the flag, the records are still there: they name what would be taken out.
  const keptWorkers = target.uninstallWorkers ? [] : (await listWorkerRecords(cluster)).map((r) => r.worker)
  if (target.dryRun) return {cluster, outcome: 'dry-run', changes, keptWorkers, planChanges: result.changes}
  const wasUp = result.phases.some(
    (p) => (p.title === stopControlPlane.title || p.title === leaveWorkers.title) && p.status === 'done',
  )
  throwIfHostsFailed(result.hosts, {cluster, outcome: 'down', changes, keptWorkers}, '`hybrid down`')
  return {cluster, outcome: wasUp ? 'down' : 'not-up', changes, keptWorkers}
}

/** Does the state file exist but not parse (STATE_INVALID)? A newer hybrid's state is not corrupt. */
async function stateIsCorrupt(cluster: string): Promise<boolean> {
  try {
    await readState(cluster)
    return false
  } catch (error) {
    return error instanceof HybridError && error.code === 'STATE_INVALID'
  }
}
