import {HybridError} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {type ClusterState, readState} from '../state/cluster-state.js'
import {isK3sServer, terminate} from '../state/processes.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'
import {ownerAlive} from './load-state.js'

/**
 * How long a supervisor gets to stop on SIGTERM: its own 20 s for k3s (SIGTERM, then SIGKILL), plus
 * undoing the workarounds.
 */
const SUPERVISOR_GRACE_MS = 45_000
const K3S_GRACE_MS = 20_000

/** Stop the supervisor (ours, or the one the state names) and any k3s it left; then re-read the state. */
export const stopControlPlane: Phase<ControlPlaneContext> = {
  title: 'stop the control plane',
  shouldRun: (ctx) => ctx.state !== undefined || ctx.supervisor !== undefined,
  async run(ctx) {
    await stopRecorded(ctx)
  },
}

/**
 * The supervisor first: it stops k3s itself and undoes what it owns. Then whatever is left: a k3s whose
 * supervisor died (a recorded pid, checked against /proc/PID/cmdline before any signal).
 */
export async function stopRecorded(ctx: ControlPlaneContext): Promise<void> {
  if (ctx.supervisor) {
    const handle = ctx.supervisor
    await ctx.wet(
      CONTROL_PLANE_HOST,
      `stop the k3s server${handle.detached ? ` and its supervisor (pid ${handle.pid})` : ''}`,
      () => handle.stop(),
    )
    ctx.supervisor = undefined
  } else if (await ownerAlive(ctx.state)) {
    const owner = ctx.state!.supervisor!
    const how = await ctx.wet(
      CONTROL_PLANE_HOST,
      `stop the supervisor of cluster ${ctx.cluster} (pid ${owner.pid}), which stops k3s`,
      () => terminate(owner.pid, SUPERVISOR_GRACE_MS),
    )
    if (how === 'killed')
      ctx.logger.warn(
        {supervisorPid: owner.pid},
        `the supervisor did not stop within ${SUPERVISOR_GRACE_MS / 1000} s; it was killed`,
      )
    if (ctx.dryRun) return
  }
  if (!ctx.dryRun) ctx.state = await readState(ctx.cluster)
  await stopLeftoverK3s(ctx, ctx.state)
}

async function stopLeftoverK3s(ctx: ControlPlaneContext, state: ClusterState | undefined): Promise<void> {
  const k3s = state?.k3s
  const binary = state?.launch?.binary
  if (!k3s || !binary || !(await isK3sServer(k3s.pid, binary))) return
  const how = await ctx.wet(CONTROL_PLANE_HOST, `stop the leftover k3s server (pid ${k3s.pid})`, () =>
    terminate(k3s.pid, K3S_GRACE_MS),
  )
  if (how !== undefined && (await isK3sServer(k3s.pid, binary)))
    throw new HybridError(`k3s server (pid ${k3s.pid}) is still running after SIGKILL`)
}
