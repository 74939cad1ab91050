import {deleteNode} from '../kube/drain.js'
import {kubeConfigFromFile} from '../kube/client.js'
import type {Phase} from '../plan/index.js'
import {forgetRemovedNodes, readRemovedNodes} from '../state/removed-nodes.js'
import {CONTROL_PLANE_HOST, type ClusterContext} from './context.js'

/**
 * The Nodes of workers that `down --uninstall-workers` took out while the API was not up
 * (state/removed-nodes.ts): k3s kept them, and their node-password secrets, in its datastore. Deleted as
 * soon as the API is ready and before any worker joins, so no uninstalled worker's Node is left behind and
 * a worker joining again under the same name is not refused for its old password. Each is forgotten once
 * deleted (or found gone); a failure leaves the rest for the next `up`.
 */
export const forgetRemovedNodesPhase: Phase<ClusterContext> = {
  title: 'delete the Nodes of removed workers',
  async shouldRun(ctx) {
    return (await readRemovedNodes(ctx.cluster)).length > 0 || {skip: 'no removed worker left a Node'}
  },
  async run(ctx) {
    for (const node of await readRemovedNodes(ctx.cluster)) {
      await ctx.wet(CONTROL_PLANE_HOST, `delete Node ${node} and its node-password secret`, async () => {
        const existed = await deleteNode(kubeConfigFromFile(ctx.paths.kubeconfig), node)
        await forgetRemovedNodes(ctx.cluster, [node])
        ctx.logger.info(`Node ${node} of a removed worker ${existed ? 'deleted' : 'was already gone'}`)
      })
    }
  },
}
