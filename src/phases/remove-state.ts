import type {Phase} from '../plan/index.js'
import {removeRuntimeFiles} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type LoadedState} from './context.js'

/** The last step of `down`: the cluster's runtime files go (its logs stay). */
export const removeState: Phase<ClusterContext & LoadedState, LoadedState> = {
  title: 'remove the cluster state',
  shouldRun: (ctx) => ctx.state !== undefined || {skip: 'none left'},
  async run(ctx) {
    const sentence = `remove the state of cluster ${ctx.cluster} from ${ctx.paths.dir} (logs stay)`
    await ctx.wet(CONTROL_PLANE_HOST, sentence, () => removeRuntimeFiles(ctx.cluster))
    return {state: ctx.dryRun ? ctx.state : undefined}
  },
}
