import {readFile} from 'node:fs/promises'

import {HybridError} from '../errors.js'
import {isElsewhere, serverFromElsewhere} from '../sandbox/location.js'
import {clusterPaths, type ClusterState} from '../state/cluster-state.js'
import {userKubeconfig} from './kubeconfig.js'

/** The cluster's kubeconfig as this process can use it, and whether the cluster lives elsewhere. */
export interface ClusterKubeconfig {
  /** The kubeconfig file `up` wrote (its server is the API as seen from where the cluster runs). */
  readonly file: string
  /** Its text, with the server this process reaches (secret: never logged). */
  readonly text: string
  readonly server: string
  /** The cluster runs in another pid namespace (a sandbox seen from its host): its server is the recorded address. */
  readonly elsewhere: boolean
}

/**
 * The kubeconfig `up` wrote says https://127.0.0.1:<apiPort>, which holds where the cluster runs. From
 * elsewhere (the host of the sandbox, which shares its files but not its network namespace) the server
 * becomes the sandbox's own address, which `up` put into the API's certificate. Undefined when the
 * cluster has no kubeconfig (it is not up).
 */
export async function clusterKubeconfig(
  cluster: string,
  state: ClusterState | undefined,
): Promise<ClusterKubeconfig | undefined> {
  const file = clusterPaths(cluster).kubeconfig
  const text = await readFile(file, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  const local = `https://127.0.0.1:${state?.apiPort ?? 6443}`
  if (!state || !(await isElsewhere(state))) return {file, text, server: local, elsewhere: false}
  const server = serverFromElsewhere(state.location, state.apiPort)
  if (!server) {
    throw new HybridError(
      'CLUSTER_ELSEWHERE',
      `cluster ${cluster} runs in another pid namespace, which recorded no address of its own to reach the API at; use its kubeconfig there`,
    )
  }
  return {file, text: userKubeconfig(text, cluster, server, file), server, elsewhere: true}
}
