import {CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'
import {statusOf} from './client.js'

/**
 * The mark of a cordon an upgrade made (its value: the version upgraded to). The rollout uncordons only
 * Nodes that carry it, so a Node the user cordoned stays cordoned after its upgrade.
 */
export const UPGRADE_CORDON_ANNOTATION = 'hybrid.dev/cordoned-for-upgrade'

async function patchNode(kc: KubeConfig, node: string, body: object, what: string): Promise<boolean> {
  try {
    await kc
      .makeApiClient(CoreV1Api)
      .patchNode({name: node, body}, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
    return true
  } catch (error) {
    if (statusOf(error) === 404) return false
    throw new HybridError('KUBE_API_FAILED', `cannot ${what} Node ${node}: ${messageOf(error).split('\n')[0]}`)
  }
}

/**
 * Mark the Node as cordoned for the upgrade to `version` and cordon it, unless someone else cordoned it
 * already (then it is left unmarked, and stays cordoned after). Returns whether it carries the mark.
 */
export async function cordonForUpgrade(kc: KubeConfig, node: string, version: string): Promise<boolean> {
  let current
  try {
    current = await kc.makeApiClient(CoreV1Api).readNode({name: node})
  } catch (error) {
    if (statusOf(error) === 404) return false
    throw new HybridError('KUBE_API_FAILED', `cannot read Node ${node}: ${messageOf(error).split('\n')[0]}`)
  }
  const marked = current.metadata?.annotations?.[UPGRADE_CORDON_ANNOTATION] !== undefined
  if (current.spec?.unschedulable && !marked) return false
  return patchNode(
    kc,
    node,
    {metadata: {annotations: {[UPGRADE_CORDON_ANNOTATION]: version}}, spec: {unschedulable: true}},
    'cordon',
  )
}

/** Uncordon the Node if the upgrade cordoned it (its mark), removing the mark; returns whether it did. */
export async function uncordonAfterUpgrade(kc: KubeConfig, node: string): Promise<boolean> {
  let current
  try {
    current = await kc.makeApiClient(CoreV1Api).readNode({name: node})
  } catch (error) {
    if (statusOf(error) === 404) return false
    throw new HybridError('KUBE_API_FAILED', `cannot read Node ${node}: ${messageOf(error).split('\n')[0]}`)
  }
  if (current.metadata?.annotations?.[UPGRADE_CORDON_ANNOTATION] === undefined) return false
  return patchNode(
    kc,
    node,
    {metadata: {annotations: {[UPGRADE_CORDON_ANNOTATION]: null}}, spec: {unschedulable: null}},
    'uncordon',
  )
}
