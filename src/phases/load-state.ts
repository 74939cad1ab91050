import {HybridError} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {isElsewhere} from '../sandbox/location.js'
import {readState} from '../state/cluster-state.js'
import type {ClusterContext, LoadedState} from './context.js'

/**
 * Read what hybrid recorded for this cluster (nothing: it is not up). Changes nothing. A cluster brought
 * up in another pid namespace (a sandbox whose files this machine shares) is not ours to stop or
 * replace: its pids and workarounds belong to that machine.
 */
export const loadState: Phase<ClusterContext, LoadedState> = {
  title: 'load the cluster state',
  async run(ctx) {
    const state = await readState(ctx.cluster)
    if (state && (await isElsewhere(state))) {
      throw new HybridError(
        'CLUSTER_ELSEWHERE',
        `cluster ${ctx.cluster} was brought up in another pid namespace (a sandbox or container sharing these files), whose processes and workarounds this hybrid cannot see; run hybrid there (if that sandbox is gone for good, removing ${ctx.paths.dir} forgets the cluster)`,
      )
    }
    return {state}
  },
}
