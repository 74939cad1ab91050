import type {Phase} from '../plan/index.js'
import {undoRecordedWorkarounds} from '../sandbox/workarounds/undo-recorded.js'
import type {ClusterContext, LoadedState} from './context.js'

/** Undo the workarounds the state records, newest first; each is forgotten once undone. */
export const undoWorkarounds: Phase<ClusterContext & LoadedState, LoadedState> = {
  title: 'undo the workarounds',
  shouldRun: (ctx) => (ctx.state?.workarounds.length ?? 0) > 0 || {skip: 'none are applied'},
  async run(ctx) {
    return {state: await undoRecordedWorkarounds(ctx, ctx.cluster, ctx.state)}
  },
}
