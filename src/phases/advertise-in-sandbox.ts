import {createServer} from 'node:net'

import {messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {LocalHost} from '../remote/local-host.js'
import {updateState} from '../state/cluster-state.js'
import {ensureAdvertisedAddress, removeAdvertisedAddress} from '../tunnel/advertised-address.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type OwnedState} from './context.js'

/**
 * Tunnel mode with an agent in the sandbox: k3s's agent follows the `kubernetes` Endpoints to the
 * advertised address and drops its local tunnel, so without that address here the API could no longer
 * reach the sandbox's kubelet. The address goes on the sandbox's own loopback device, where the API
 * answers it directly; recorded in the state, and taken off by `down`. A sandbox that does not allow it
 * is said so in one warning, and the server's agent keeps reporting its tunnel down.
 */
export const advertiseInSandbox: Phase<ClusterContext & InventoryInput & OwnedState> = {
  title: 'advertise the API inside the sandbox',
  async shouldRun(ctx) {
    const {controlPlane, network} = ctx.inventory
    if (!controlPlane.agent) return {skip: 'the control plane is agentless'}
    if (network.mode !== 'tunnel') return {skip: 'direct mode: the advertised address is the sandbox’s own'}
    if (await isLocal(controlPlane.advertiseAddress)) return {skip: `${controlPlane.advertiseAddress} is already here`}
    return true
  },
  async run(ctx) {
    const address = ctx.inventory.controlPlane.advertiseAddress
    try {
      await ctx.wet(CONTROL_PLANE_HOST, `put ${address}/32 on the sandbox's loopback device`, async () => {
        const placed = await ensureAdvertisedAddress(new LocalHost({sudo: 'never'}), address, {loopbackOnly: true})
        ctx.state = await updateState(ctx.cluster, (s) => ({
          ...s,
          sandboxAddress: {address: placed.address, device: placed.device},
        }))
      })
    } catch (error) {
      ctx.logger.warn(
        {err: error},
        `cannot put ${address} on this sandbox's loopback device (${messageOf(error).split('\n')[0]}); the sandbox's own agent cannot reach the API at the advertised address, so \`kubectl logs\` and \`exec\` into its pods will fail`,
      )
    }
  },
  async cleanUp(ctx) {
    // A failed `up` leaves nothing: not the address it put here either.
    const placed = ctx.state.sandboxAddress
    if (placed && !ctx.dryRun) await removeAdvertisedAddress(new LocalHost({sudo: 'never'}), {...placed, created: true})
  },
}

/**
 * Whether a socket can bind to the address here: the kernel's answer. (A gVisor sandbox that shares the
 * host's network stack lists its interfaces as they were when it started, so the list can be stale.)
 */
function isLocal(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(0, address, () => server.close(() => resolve(true)))
  })
}
