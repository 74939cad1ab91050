import {type Phase, skip} from '../plan/index.js'
import {recordWorkaround} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'
import {undoRecorded} from './undo-workarounds.js'

/**
 * Apply the chosen workarounds in order. Each one's record goes into the state file before the next
 * one is applied, so `down` (or the clean-up of a failed `up`) undoes exactly what was done, even after
 * hybrid crashed.
 */
export const applyWorkarounds: Phase<ControlPlaneContext> = {
  title: 'apply the workarounds',
  shouldRun(ctx) {
    if (ctx.alreadyUp) return skip('the cluster is already up')
    return (ctx.selected?.length ?? 0) > 0 || skip('no workaround to apply here')
  },
  async run(ctx) {
    const wctx = {...ctx.workaroundContext!, ...(ctx.k3s ? {k3sBinary: ctx.k3s.path} : {})}
    ctx.workaroundContext = wctx
    for (const workaround of ctx.selected ?? []) {
      const record = await ctx.wet(CONTROL_PLANE_HOST, `apply workaround ${workaround.id}: ${workaround.remedy}`, () =>
        workaround.apply(wctx),
      )
      if (record) ctx.state = await recordWorkaround(ctx.cluster, record)
    }
  },
  async cleanUp(ctx) {
    await undoRecorded(ctx)
  },
}
