import {HybridError} from '../errors.js'
import type {Phase} from '../plan/index.js'
import type {ClusterContext, Launched, LoadedState, OwnedState} from './context.js'

/**
 * The detached supervisor takes over a cluster its parent `up --detach` prepared: the state must be
 * there, with the launch spec recorded and k3s not yet started. Start-control-plane then records this
 * process as the owner.
 */
export const adoptState: Phase<ClusterContext & LoadedState, OwnedState & Launched> = {
  title: 'take over the prepared cluster',
  run(ctx) {
    const state = ctx.state
    if (!state?.launch || state.phase !== 'starting') {
      const why = state ? `its state is ${state.phase}` : 'it has no state'
      const sentence = `cluster ${ctx.cluster} is not waiting for a supervisor (${why}); \`hybrid up --detach\` starts one`
      throw new HybridError('CLUSTER_NOT_WAITING', sentence)
    }
    return {state, launch: state.launch}
  },
}
