import type {Inventory} from '../inventory/model.js'
import {type Change, Plan, runPlan} from '../plan/index.js'
import type {ClusterContext} from '../phases/context.js'
import {type LeaveSelection, leaveWorkers} from '../phases/leave-workers.js'
import {loadState} from '../phases/load-state.js'
import {removeSandboxAddress} from '../phases/remove-sandbox-address.js'
import {removeState} from '../phases/remove-state.js'
import {stopControlPlane} from '../phases/stop-control-plane.js'
import {undoWorkarounds} from '../phases/undo-workarounds.js'
import {type ActionEnv, clusterContext} from './context.js'
import {throwIfHostsFailed} from './partly-done.js'
import {planError} from './plan-error.js'

export interface DownResult {
  readonly cluster: string
  /** down: it was up (or had leftovers) and is now down; not-up: there was nothing to do. */
  readonly outcome: 'down' | 'not-up' | 'dry-run'
  /** What changed (under --dry-run: what would change), one sentence each. */
  readonly changes: readonly string[]
  /** The same changes with their phase and host, for the human rendering (not part of the JSON result). */
  readonly planChanges?: readonly Change[]
}

/**
 * Take the workers out, stop everything in reverse order and undo every workaround, from the state
 * file and the worker records alone.
 */
const DOWN = Plan.start<ClusterContext & LeaveSelection>()
  .then(loadState)
  .then(leaveWorkers)
  .then(stopControlPlane)
  .then(removeSandboxAddress)
  .then(undoWorkarounds)
  .then(removeState)

export async function down(
  env: ActionEnv,
  target: {readonly cluster: string; readonly inventory?: Inventory; readonly dryRun: boolean},
): Promise<DownResult> {
  const {cluster} = target
  const concurrency = target.inventory?.concurrency
  const ctx = {...clusterContext(env, cluster, {dryRun: target.dryRun, concurrency}), drainNodes: false}
  const result = await runPlan(DOWN, ctx)
  if (result.status !== 'done') throw planError(result, '`hybrid down`')
  const changes = result.changes.map((c) => c.sentence)
  if (target.dryRun) return {cluster, outcome: 'dry-run', changes, planChanges: result.changes}
  const wasUp = result.phases.some(
    (p) => (p.title === stopControlPlane.title || p.title === leaveWorkers.title) && p.status === 'done',
  )
  throwIfHostsFailed(result.hosts, {cluster, outcome: 'down', changes}, '`hybrid down`')
  return {cluster, outcome: wasUp ? 'down' : 'not-up', changes}
}
