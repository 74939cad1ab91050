import type {Phase} from '../plan/index.js'
import {readState} from '../state/cluster-state.js'
import type {ClusterContext, LoadedState} from './context.js'

/** Read what hybrid recorded for this cluster (nothing: it is not up). Changes nothing. */
export const loadState: Phase<ClusterContext, LoadedState> = {
  title: 'load the cluster state',
  async run(ctx) {
    return {state: await readState(ctx.cluster)}
  },
}
