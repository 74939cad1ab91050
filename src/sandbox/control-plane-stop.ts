import {HybridError} from '../errors.js'
import type {PlanContext} from '../plan/index.js'
import {type ClusterState, readState} from '../state/cluster-state.js'
import {ownerAlive} from '../state/owner.js'
import {isK3sServer, terminate} from '../util/processes.js'
import {CONTROL_PLANE_HOST} from './host.js'
import type {SupervisorHandle} from './supervisor-handle.js'

/**
 * Stopping a control plane from what is known of it: the supervisor this process holds, or the one the
 * state names (it stops k3s itself and undoes what it owns); then a k3s whose supervisor died (a recorded
 * pid, checked against /proc/PID/cmdline before any signal). Used by `down` and by an `up` that finds
 * the leftovers of a hybrid that crashed.
 */

/** How long a supervisor gets to stop on SIGTERM: its own 20 s for k3s, plus undoing the workarounds. */
const SUPERVISOR_GRACE_MS = 45_000
const K3S_GRACE_MS = 20_000

export interface StopTarget {
  readonly cluster: string
  /** The supervisor this process holds, if any. */
  readonly supervisor?: SupervisorHandle
  /** The recorded state (undefined: nothing recorded). */
  readonly state: ClusterState | undefined
}

/** Stop it all; returns the state as recorded afterwards (the supervisor may have changed it). */
export async function stopControlPlaneOf(
  ctx: Pick<PlanContext, 'wet' | 'dryRun' | 'logger'>,
  target: StopTarget,
): Promise<ClusterState | undefined> {
  const {cluster} = target
  if (target.supervisor) {
    const handle = target.supervisor
    const who = handle.detached ? ` and its supervisor (pid ${handle.pid})` : ''
    await ctx.wet(CONTROL_PLANE_HOST, `stop the k3s server${who}`, () => handle.stop())
  } else if (target.state?.supervisor && (await ownerAlive(target.state))) {
    const owner = target.state.supervisor
    const sentence = `stop the supervisor of cluster ${cluster} (pid ${owner.pid}), which stops k3s`
    const how = await ctx.wet(CONTROL_PLANE_HOST, sentence, () => terminate(owner.pid, SUPERVISOR_GRACE_MS))
    if (how === 'killed') {
      const seconds = SUPERVISOR_GRACE_MS / 1000
      ctx.logger.warn({supervisorPid: owner.pid}, `the supervisor did not stop within ${seconds} s; it was killed`)
    }
    if (ctx.dryRun) return target.state
  }
  const state = ctx.dryRun ? target.state : await readState(cluster)
  await stopLeftoverK3s(ctx, state)
  return state
}

async function stopLeftoverK3s(ctx: Pick<PlanContext, 'wet'>, state: ClusterState | undefined): Promise<void> {
  const k3s = state?.k3s
  const binary = state?.launch?.binary
  if (!k3s || !binary || !(await isK3sServer(k3s.pid, binary))) return
  const how = await ctx.wet(CONTROL_PLANE_HOST, `stop the leftover k3s server (pid ${k3s.pid})`, () =>
    terminate(k3s.pid, K3S_GRACE_MS),
  )
  if (how !== undefined && (await isK3sServer(k3s.pid, binary)))
    throw new HybridError('K3S_STOP_FAILED', `k3s server (pid ${k3s.pid}) is still running after SIGKILL`)
}
