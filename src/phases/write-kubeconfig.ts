import {readFile} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import {userKubeconfig} from '../kube/kubeconfig.js'
import type {Phase} from '../plan/index.js'
import {currentCluster, setCurrentCluster} from '../state/current.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'

/**
 * The user's kubeconfig, `stateDir()/clusters/<name>/kubeconfig` (0600): made from the one k3s wrote,
 * with cluster, user and context named after the cluster and the server https://127.0.0.1:<apiPort>.
 * The cluster also becomes the one commands use without `--inventory`.
 */
export const writeKubeconfig: Phase<ControlPlaneContext> = {
  title: 'write the kubeconfig',
  async run(ctx) {
    const {cluster, paths} = ctx
    if (!ctx.alreadyUp) {
      const source = ctx.launch!.k3sKubeconfig
      const port = ctx.inventory!.controlPlane.apiPort
      await ctx.wet(
        CONTROL_PLANE_HOST,
        `write the kubeconfig ${paths.kubeconfig} (0600, context ${cluster})`,
        async () => {
          let text: string
          try {
            text = await readFile(source, 'utf8')
          } catch (error) {
            throw new HybridError(`k3s is ready, but its kubeconfig ${source} cannot be read: ${messageOf(error)}`)
          }
          await writeFileAtomic(
            paths.kubeconfig,
            userKubeconfig(text, cluster, `https://127.0.0.1:${port}`, source),
            0o600,
          )
        },
      )
    }
    ctx.kubeconfig = paths.kubeconfig
    if ((await currentCluster()) !== cluster) {
      await ctx.wet(CONTROL_PLANE_HOST, `make ${cluster} the cluster commands use without --inventory`, () =>
        setCurrentCluster(cluster),
      )
    }
  },
}
