import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {Plan, type PlanOutput, runPlan} from '../plan/index.js'
import {adoptState} from '../phases/adopt-state.js'
import type {ClusterContext, SupervisionInput} from '../phases/context.js'
import {loadState} from '../phases/load-state.js'
import {startControlPlane} from '../phases/start-control-plane.js'
import type {ChildMessage} from '../sandbox/detached-supervisor.js'
import {K3sFailure} from '../sandbox/k3s-failure.js'
import {whenAborted} from '../util/abort.js'
import {type ActionEnv, clusterContext} from './context.js'
import {planError} from './plan-error.js'
import {superviseUntilStopped, teardown} from './teardown.js'

/** The detached supervisor's own plan: take over what the parent `up --detach` prepared, and start k3s. */
const SUPERVISE = Plan.start<ClusterContext & SupervisionInput & {readonly inventory: Inventory}>()
  .then(loadState)
  .then(adoptState)
  .then(startControlPlane)

/**
 * `up --supervise`, the detached child of `up --detach`: start k3s, report readiness (or why not) to the
 * parent over IPC, then supervise until stopped. Returns how it ended.
 */
export async function superviseDetached(env: ActionEnv, inventory: Inventory): Promise<'stopped'> {
  const send = (message: ChildMessage) => (process.connected ? process.send?.(message) : undefined)
  const input = {...clusterContext(env, inventory.name), inventory, supervision: 'detached-child' as const}
  const result = await runPlan(SUPERVISE, input)
  if (result.status !== 'done') {
    const error = planError(result, '`hybrid down`')
    const sentence = error.message
    send({type: 'failed', failure: {kind: 'died', sentence, exitCode: null, signal: null, logTail: error.details}})
    throw error
  }
  const ctx = input as PlanOutput<typeof SUPERVISE>
  const ready = await settled(ctx.supervisor?.ready, env.signal)
  if (ready === 'stop') {
    // The parent gave up waiting (interrupted, timed out): stop and undo; it finds nothing left to undo.
    await teardown(ctx, {undo: true})
    return 'stopped'
  }
  if (ready !== 'ready') {
    send({type: 'failed', failure: ready.toData()})
    await teardown(ctx, {undo: false}) // the parent's clean-up undoes the workarounds
    throw ready
  }
  send({type: 'ready'})
  if (process.connected) process.disconnect()
  const failure = await superviseUntilStopped(ctx)
  if (failure) throw failure
  return 'stopped'
}

/** How the first readiness ended: ready, k3s's failure, or a stop requested first. */
async function settled(ready: Promise<void> | undefined, signal: AbortSignal): Promise<'ready' | 'stop' | K3sFailure> {
  if (!ready) throw new HybridError('INTERNAL', 'the supervisor did not start')
  const stop = whenAborted(signal).then(() => 'stop' as const)
  const first = ready.then(
    (): 'ready' => 'ready',
    (failure: unknown) => {
      if (failure instanceof K3sFailure) return failure
      throw failure
    },
  )
  return Promise.race([first, stop])
}
