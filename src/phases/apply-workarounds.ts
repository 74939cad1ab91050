import type {Phase} from '../plan/index.js'
import {undoRecordedWorkarounds} from '../sandbox/workarounds/undo-recorded.js'
import {recordWorkaround} from '../state/cluster-state.js'
import {
  CONTROL_PLANE_HOST,
  type ChosenWorkarounds,
  type ClusterContext,
  type K3sBinary,
  type OwnedState,
} from './context.js'

/**
 * Apply the chosen workarounds in order. Each one's intent (where it changes the machine) goes into the
 * state file before it is applied, and its record right after, before the next one is applied, so
 * `down` (or the clean-up of a failed `up`) undoes exactly what was done, even after hybrid crashed.
 */
export const applyWorkarounds: Phase<ClusterContext & OwnedState & ChosenWorkarounds & K3sBinary, OwnedState> = {
  title: 'apply the workarounds',
  shouldRun: (ctx) => ctx.selected.length > 0 || {skip: 'no workaround to apply here'},
  async run(ctx) {
    const wctx = {...ctx.workaroundContext, ...(ctx.k3s ? {k3sBinary: ctx.k3s.path} : {})}
    let state = ctx.state
    for (const workaround of ctx.selected) {
      const sentence = `apply workaround ${workaround.id}: ${workaround.remedy}`
      const record = await ctx.wet(CONTROL_PLANE_HOST, sentence, async () => {
        // The intent first: a crash inside apply is then undone from it (docs/architecture.md, "Crash windows").
        const intent = await workaround.intent?.(wctx)
        if (intent) state = await recordWorkaround(ctx.cluster, intent)
        return workaround.apply(wctx)
      })
      if (record) state = await recordWorkaround(ctx.cluster, record)
    }
    return {state}
  },
  async cleanUp(ctx) {
    await undoRecordedWorkarounds(ctx, ctx.cluster, ctx.state)
  },
}
