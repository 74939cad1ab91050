import {isRecordedProcess} from '../util/processes.js'
import type {ClusterState} from './cluster-state.js'

/**
 * Is the process that owns this state still running, and is it really that process (a recorded pid can
 * be reused)? The `up` that runs this check owns nothing yet, so its own pid never counts.
 */
export async function ownerAlive(state: ClusterState | undefined): Promise<boolean> {
  const owner = state?.supervisor
  if (!owner || owner.pid === process.pid) return false
  return isRecordedProcess(owner.pid, owner.argv)
}
