import type {Phase} from '../plan/index.js'
import {stopControlPlaneOf} from '../sandbox/control-plane-stop.js'
import type {ClusterContext, LoadedState, Supervised} from './context.js'

/** Stop the supervisor (ours, or the one the state names) and any k3s it left; then re-read the state. */
export const stopControlPlane: Phase<ClusterContext & LoadedState & Partial<Supervised>, LoadedState & Supervised> = {
  title: 'stop the control plane',
  shouldRun: (ctx) => ctx.state !== undefined || ctx.supervisor !== undefined,
  async run(ctx) {
    const state = await stopControlPlaneOf(ctx, {cluster: ctx.cluster, state: ctx.state, supervisor: ctx.supervisor})
    return {state, supervisor: undefined}
  },
}
