import type {Phase} from '../plan/index.js'
import {type ClusterState, readState} from '../state/cluster-state.js'
import {isRecordedProcess} from '../state/processes.js'
import type {ControlPlaneContext} from './control-plane-context.js'

/** Read what hybrid recorded for this cluster (nothing: it is not up). Changes nothing. */
export const loadState: Phase<ControlPlaneContext> = {
  title: 'load the cluster state',
  async run(ctx) {
    ctx.state = await readState(ctx.cluster)
  },
}

/**
 * Is the process that owns this state still running, and is it really that process (a recorded pid can
 * be reused)? The `up` that runs this check owns nothing yet, so its own pid never counts.
 */
export async function ownerAlive(state: ClusterState | undefined): Promise<boolean> {
  const owner = state?.supervisor
  if (!owner || owner.pid === process.pid) return false
  return isRecordedProcess(owner.pid, owner.argv)
}
