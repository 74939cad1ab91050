import type {Phase} from '../plan/index.js'
import {removeRuntimeFiles} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'

/** The last step of `down`: the cluster's runtime files go (its logs stay). */
export const removeState: Phase<ControlPlaneContext> = {
  title: 'remove the cluster state',
  shouldRun: (ctx) => ctx.state !== undefined,
  async run(ctx) {
    await ctx.wet(
      CONTROL_PLANE_HOST,
      `remove the state of cluster ${ctx.cluster} from ${ctx.paths.dir} (logs stay)`,
      () => removeRuntimeFiles(ctx.cluster),
    )
    if (!ctx.dryRun) ctx.state = undefined
  },
}
