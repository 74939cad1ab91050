import {HybridError} from '../errors.js'
import type {Phase} from '../plan/index.js'
import type {ControlPlaneContext} from './control-plane-context.js'

/**
 * The detached supervisor takes over a cluster its parent `up --detach` prepared: the state must be
 * there, with the launch spec recorded and k3s not yet started. Start-control-plane then records this
 * process as the owner.
 */
export const adoptState: Phase<ControlPlaneContext> = {
  title: 'take over the prepared cluster',
  async run(ctx) {
    const state = ctx.state
    if (!state?.launch || state.phase !== 'starting') {
      throw new HybridError(
        `cluster ${ctx.cluster} is not waiting for a supervisor (${state ? `its state is ${state.phase}` : 'it has no state'}); \`hybrid up --detach\` starts one`,
      )
    }
    ctx.launch = state.launch
  },
}
