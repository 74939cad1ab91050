import {CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'
import {statusOf} from './client.js'
import {pollUntil} from './readiness.js'

/**
 * Taking a Node out of the cluster as `kubectl drain` and `kubectl delete node` do: cordon, evict its
 * pods (DaemonSet pods and mirror pods stay, as with --ignore-daemonsets), wait for them to go, delete
 * the Node and the node-password secret k3s keeps for it (kube-system/<node>.node-password.k3s), so the
 * same name can join again with a new password.
 */

function evictable(pod: V1Pod): boolean {
  const owners = pod.metadata?.ownerReferences ?? []
  const mirror = pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined
  const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
  return !mirror && !finished && !owners.some((o) => o.kind === 'DaemonSet')
}

/** Cordon `node` and evict its pods; returns how many were evicted. A Node that is gone is already drained. */
export async function drainNode(
  kc: KubeConfig,
  node: string,
  options: {readonly timeoutMs: number; readonly signal?: AbortSignal},
): Promise<{evicted: number}> {
  const core = kc.makeApiClient(CoreV1Api)
  try {
    await core.patchNode(
      {name: node, body: {spec: {unschedulable: true}}},
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
  } catch (error) {
    if (statusOf(error) === 404) return {evicted: 0}
    throw new HybridError('KUBE_API_FAILED', `cannot cordon Node ${node}: ${messageOf(error).split('\n')[0]}`)
  }
  const podsOn = async () =>
    (await core.listPodForAllNamespaces({fieldSelector: `spec.nodeName=${node}`})).items.filter(evictable)
  const pods = await podsOn()
  for (const pod of pods) {
    const name = pod.metadata?.name ?? ''
    const namespace = pod.metadata?.namespace ?? 'default'
    try {
      await core.createNamespacedPodEviction({
        name,
        namespace,
        body: {apiVersion: 'policy/v1', kind: 'Eviction', metadata: {name, namespace}},
      })
    } catch (error) {
      if (statusOf(error) !== 404)
        throw new HybridError(
          'KUBE_API_FAILED',
          `cannot evict pod ${namespace}/${name} from Node ${node}: ${messageOf(error).split('\n')[0]}`,
        )
    }
  }
  if (pods.length > 0)
    await pollUntil(`the pods leaving Node ${node}`, async () => ((await podsOn()).length === 0 ? true : undefined), {
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      intervalMs: 500,
    })
  return {evicted: pods.length}
}

/** Delete the Node and its node-password secret; what is already gone is fine. Returns whether the Node was there. */
export async function deleteNode(kc: KubeConfig, node: string): Promise<boolean> {
  const core = kc.makeApiClient(CoreV1Api)
  let existed = true
  try {
    await core.deleteNode({name: node})
  } catch (error) {
    if (statusOf(error) !== 404)
      throw new HybridError('KUBE_API_FAILED', `cannot delete Node ${node}: ${messageOf(error).split('\n')[0]}`)
    existed = false
  }
  try {
    await core.deleteNamespacedSecret({name: `${node}.node-password.k3s`, namespace: 'kube-system'})
  } catch (error) {
    if (statusOf(error) !== 404)
      throw new HybridError(
        'KUBE_API_FAILED',
        `cannot delete the node-password secret of ${node}: ${messageOf(error).split('\n')[0]}`,
      )
  }
  return existed
}
