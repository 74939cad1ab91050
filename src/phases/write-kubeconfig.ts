import {readFile} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import {userKubeconfig} from '../kube/kubeconfig.js'
import type {Phase} from '../plan/index.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {
  CONTROL_PLANE_HOST,
  type ClusterContext,
  type InventoryInput,
  type KubeconfigWritten,
  type Launched,
} from './context.js'

/**
 * The user's kubeconfig, `stateDir()/clusters/<name>/kubeconfig` (0600): made from the one k3s wrote,
 * with cluster, user and context named after the cluster and the server https://127.0.0.1:<apiPort>.
 */
export const writeKubeconfig: Phase<ClusterContext & InventoryInput & Launched, KubeconfigWritten> = {
  title: 'write the kubeconfig',
  async run(ctx) {
    const {cluster, paths} = ctx
    const source = ctx.launch.k3sKubeconfig
    const server = `https://127.0.0.1:${ctx.inventory.controlPlane.apiPort}`
    await ctx.wet(
      CONTROL_PLANE_HOST,
      `write the kubeconfig ${paths.kubeconfig} (0600, context ${cluster})`,
      async () => {
        let text: string
        try {
          text = await readFile(source, 'utf8')
        } catch (error) {
          const sentence = `k3s is ready, but its kubeconfig ${source} cannot be read: ${messageOf(error)}`
          throw new HybridError('KUBECONFIG_UNREADABLE', sentence)
        }
        await writeFileAtomic(paths.kubeconfig, userKubeconfig(text, cluster, server, source), 0o600)
      },
    )
    return {kubeconfig: paths.kubeconfig}
  },
}
