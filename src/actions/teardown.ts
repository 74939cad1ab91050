import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {createPlanContext, Plan, runPlan} from '../plan/index.js'
import type {ClusterContext, LoadedState, Supervised} from '../phases/context.js'
import {recordFailure} from '../phases/record-failure.js'
import {removeSandboxAddress} from '../phases/remove-sandbox-address.js'
import {removeState} from '../phases/remove-state.js'
import {stopControlPlane} from '../phases/stop-control-plane.js'
import {undoWorkarounds} from '../phases/undo-workarounds.js'
import {explainFailure} from '../sandbox/diagnosis.js'
import type {SupervisorOutcome} from '../sandbox/supervisor.js'
import {whenAborted} from '../util/abort.js'
import {lockForTeardown} from './run-lock.js'
import {startSnapshotSchedule} from './snapshot-schedule.js'

/** A running control plane as the supervising process holds it. */
export type Running = ClusterContext & LoadedState & Supervised & {readonly inventory: Inventory}

/**
 * The supervisor's life after readiness (foreground `up`, or the detached child): keep k3s running
 * until SIGINT/SIGTERM (ctx.signal) or until the supervisor gives up, then tear down. Returns the error
 * to report when it gave up (the teardown has run by then), undefined after a requested stop.
 */
export async function superviseUntilStopped(ctx: Running): Promise<HybridError | undefined> {
  const local = ctx.supervisor?.local
  if (!local) throw new HybridError('INTERNAL', 'there is no supervisor in this process to wait for')
  const snapshots = startSnapshotSchedule(ctx)
  const outcome = await Promise.race([local.done, whenAborted(ctx.signal).then(() => 'stop' as const)])
  // Asked to stop (`down`, Ctrl-C): k3s still runs, so the datastore is copied once more first.
  if (outcome === 'stop') await snapshots.final()
  else snapshots.stop()
  const lock = await lockForTeardown(ctx, ctx.cluster)
  try {
    return await stopSupervised(ctx, outcome)
  } finally {
    await lock?.release()
  }
}

async function stopSupervised(ctx: Running, outcome: 'stop' | SupervisorOutcome): Promise<HybridError | undefined> {
  if (outcome === 'stop' || 'stopped' in outcome) {
    ctx.logger.info(`stopping cluster ${ctx.cluster}`)
    await teardown(ctx, {undo: true})
    return undefined
  }
  const error = explainFailure(outcome.failed, {
    workarounds: ctx.inventory.controlPlane.workarounds,
    applied: (ctx.state?.workarounds ?? []).map((r) => r.id),
    k3sLog: ctx.paths.k3sLog,
  })
  ctx.logger.error(error.message)
  for (const line of error.details) ctx.logger.error(line)
  await teardown(ctx, {undo: true, failure: error.message})
  return error
}

/**
 * Stop k3s, then (undo) undo the workarounds and remove the state, as `down` does, in a plan of its own:
 * it must run although ctx.signal is aborted (that is usually why it runs). `undo: false` only stops k3s
 * (the detached child whose k3s never got ready: its parent undoes the rest). `failure` keeps the state,
 * saying why k3s stopped, for `status`.
 */
export async function teardown(
  ctx: ClusterContext & LoadedState & Partial<Supervised>,
  options: {undo: boolean; failure?: string},
): Promise<void> {
  const fresh = createPlanContext({logger: ctx.logger, progress: ctx.progress, concurrency: ctx.concurrency})
  const base = {...ctx, ...fresh}
  const stop = Plan.start<typeof base>().then(stopControlPlane)
  const undo = stop.then(removeSandboxAddress).then(undoWorkarounds)
  // As plain `down`: the workers keep what hybrid installed, recorded, so the next `up` finds them
  // joined, and `down --uninstall-workers` can take them out from the records alone.
  const plan = !options.undo
    ? stop
    : options.failure
      ? undo.then(recordFailure(options.failure))
      : undo.then(removeState)
  const result = await runPlan(plan, base)
  ctx.supervisor = undefined
  if (result.status !== 'done')
    ctx.logger.error(
      `tearing down cluster ${ctx.cluster} failed in "${result.failure?.phase}": ${result.failure?.message}`,
    )
}
