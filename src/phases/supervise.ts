import {rm} from 'node:fs/promises'

import type {HybridError} from '../errors.js'
import {createPlanContext, type Phase, runPlan} from '../plan/index.js'
import {updateState} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'
import {removeState} from './remove-state.js'
import {stopControlPlane} from './stop-control-plane.js'
import {undoWorkarounds} from './undo-workarounds.js'
import {failureError} from './wait-ready.js'

/**
 * The supervisor's life after readiness (foreground `up`, or the detached child): keep k3s running
 * until SIGINT/SIGTERM (ctx.signal) or until the supervisor gives up, then tear down. Returns the error
 * to report when it gave up (the teardown has run by then), undefined after a requested stop.
 */
export async function superviseUntilStopped(ctx: ControlPlaneContext): Promise<HybridError | undefined> {
  const local = ctx.supervisor!.local!
  const stopRequested = new Promise<'stop'>((resolve) => {
    if (ctx.signal.aborted) resolve('stop')
    ctx.signal.addEventListener('abort', () => resolve('stop'), {once: true})
  })
  const outcome = await Promise.race([local.done, stopRequested])
  if (outcome === 'stop' || 'stopped' in outcome) {
    ctx.logger.info(`stopping cluster ${ctx.cluster}`)
    await controlPlaneTeardown(ctx, {undo: true})
    return undefined
  }
  const error = failureError(outcome.failed, ctx)
  ctx.logger.error(error.message)
  for (const line of error.details) ctx.logger.error(line)
  await controlPlaneTeardown(ctx, {undo: true, failure: error.message})
  return error
}

/** What remains after the supervisor gave up: the state, saying why, for `status` (and `down`, `up`). */
const recordFailure = (failure: string): Phase<ControlPlaneContext> => ({
  title: 'record why the control plane stopped',
  async run(ctx) {
    await ctx.wet(CONTROL_PLANE_HOST, `record in ${ctx.paths.state} that k3s stopped for good`, async () => {
      await updateState(ctx.cluster, (s) => ({...s, phase: 'stopped', failure}))
      await rm(ctx.paths.pidfile, {force: true})
    })
  },
})

/**
 * Stop k3s, then (undo) undo the workarounds and remove the state, as `down` does, in a plan of its own:
 * it must run although ctx.signal is aborted (that is usually why it runs). `undo: false` only stops k3s
 * (the detached child whose k3s never got ready: its parent undoes the rest).
 */
export async function controlPlaneTeardown(
  ctx: ControlPlaneContext,
  options: {undo: boolean; failure?: string},
): Promise<void> {
  const teardown: ControlPlaneContext = {
    ...ctx,
    ...createPlanContext({
      logger: ctx.logger,
      dryRun: false,
      signal: new AbortController().signal,
      progress: ctx.progress,
      concurrency: ctx.concurrency,
    }),
  }
  const phases: Phase<ControlPlaneContext>[] = [stopControlPlane]
  if (options.undo) phases.push(undoWorkarounds, options.failure ? recordFailure(options.failure) : removeState)
  const result = await runPlan(phases, teardown)
  ctx.supervisor = undefined
  if (result.status !== 'done')
    ctx.logger.error(
      `tearing down cluster ${ctx.cluster} failed in "${result.failure?.phase}": ${result.failure?.message}`,
    )
}
