import {createServer} from 'node:net'

import {messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {LocalHost} from '../remote/local-host.js'
import {updateState} from '../state/cluster-state.js'
import {ensureAdvertisedAddress, removeAdvertisedAddress} from '../tunnel/advertised-address.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type OwnedState} from './context.js'

/**
 * Tunnel mode with an agent in the sandbox: k3s's agent follows the `kubernetes` Endpoints and opens
 * its remotedialer tunnel to the advertised address, which answers only on the workers. The server
 * never needs that tunnel for its own Node (k3s's tunnel server dials its own kubelet directly), so the
 * address here only spares k3s.log a stream of reconnect errors. It goes on the sandbox's own loopback
 * device, where the API answers it; recorded in the state, and taken off by `down`. A sandbox that does
 * not allow it is said so in one warning.
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
        `cannot put ${address} on this sandbox's loopback device (${messageOf(error).split('\n')[0]}); the server's own agent will keep logging remotedialer errors in k3s.log as it tries to tunnel to the advertised address, which is harmless: the server reaches its own kubelet directly, so \`kubectl logs\` and \`exec\` work`,
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
