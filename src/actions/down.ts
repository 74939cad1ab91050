import type {Inventory} from '../inventory/model.js'
import {type Change, Plan, runPlan} from '../plan/index.js'
import type {ClusterContext} from '../phases/context.js'
import {loadState} from '../phases/load-state.js'
import {removeState} from '../phases/remove-state.js'
import {stopControlPlane} from '../phases/stop-control-plane.js'
import {undoWorkarounds} from '../phases/undo-workarounds.js'
import {type ActionEnv, clusterContext} from './context.js'
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

/** Stop everything in reverse order and undo every workaround, from the state file alone. */
const DOWN = Plan.start<ClusterContext>().then(loadState).then(stopControlPlane).then(undoWorkarounds).then(removeState)

export async function down(
  env: ActionEnv,
  target: {readonly cluster: string; readonly inventory?: Inventory; readonly dryRun: boolean},
): Promise<DownResult> {
  const {cluster} = target
  const concurrency = target.inventory?.concurrency
  const result = await runPlan(DOWN, clusterContext(env, cluster, {dryRun: target.dryRun, concurrency}))
  if (result.status !== 'done') throw planError(result, '`hybrid down`')
  const changes = result.changes.map((c) => c.sentence)
  if (target.dryRun) return {cluster, outcome: 'dry-run', changes, planChanges: result.changes}
  const wasUp = result.phases.some((p) => p.title === stopControlPlane.title && p.status === 'done')
  return {cluster, outcome: wasUp ? 'down' : 'not-up', changes}
}
