import type {Phase} from '../plan/index.js'
import {LocalHost} from '../remote/local-host.js'
import {updateState} from '../state/cluster-state.js'
import {removeAdvertisedAddress} from '../tunnel/advertised-address.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type LoadedState} from './context.js'

/** Take off the advertised address `up` put on the sandbox's loopback device (recorded in the state). */
export const removeSandboxAddress: Phase<ClusterContext & LoadedState> = {
  title: 'remove the advertised address from the sandbox',
  shouldRun: (ctx) => ctx.state?.sandboxAddress !== undefined || {skip: 'hybrid put none here'},
  async run(ctx) {
    const recorded = ctx.state?.sandboxAddress
    if (!recorded) return
    await ctx.wet(CONTROL_PLANE_HOST, `remove ${recorded.address} from ${recorded.device}`, async () => {
      await removeAdvertisedAddress(new LocalHost({sudo: 'never'}), {...recorded, created: true})
      ctx.state = await updateState(ctx.cluster, (s) => ({...s, sandboxAddress: undefined}))
    })
  },
}
