import {CoreV1Api, type KubeConfig, type V1Node} from '@kubernetes/client-node'

import {pollUntil, type WaitOptions} from './readiness.js'

/** A Node as hybrid shows and checks it: readiness, taints and labels. */
export interface NodeSummary {
  readonly name: string
  readonly ready: boolean
  /** The Ready condition's reason or message when not ready ('' when ready or unknown). */
  readonly reason: string
  /** "key=value:Effect" (or "key:Effect"), as the inventory writes taints. */
  readonly taints: readonly string[]
  readonly labels: Readonly<Record<string, string>>
  /** The kubelet's version, e.g. v1.34.1+k3s1. */
  readonly version: string
  /** status.addresses of type InternalIP. */
  readonly internalIPs: readonly string[]
}

export function summarizeNode(node: V1Node): NodeSummary {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')
  return {
    name: node.metadata?.name ?? '',
    ready: ready?.status === 'True',
    reason: ready?.status === 'True' ? '' : (ready?.message ?? ready?.reason ?? 'no Ready condition yet'),
    taints: (node.spec?.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`),
    labels: node.metadata?.labels ?? {},
    version: node.status?.nodeInfo?.kubeletVersion ?? '',
    internalIPs: (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address),
  }
}

/** Every Node, sorted by name. */
export async function listNodes(kc: KubeConfig): Promise<NodeSummary[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNode()
  return list.items.map(summarizeNode).sort((a, b) => a.name.localeCompare(b.name))
}

/** The kubelet's words for a Node whose container runtime has no CNI config to load (containerd's NetworkReady). */
export function lacksCni(node: NodeSummary): boolean {
  return !node.ready && node.reason.includes('reason:NetworkPluginNotReady')
}

/**
 * Wait until every Node in `names` exists and is Ready (or, when given, `settled` accepts it as it is).
 * `onChange` hears each poll's view (for progress rows); API errors while waiting count as "not yet".
 */
export async function waitNodesReady(
  kc: KubeConfig,
  names: readonly string[],
  options: WaitOptions & {onChange?: (nodes: NodeSummary[]) => void; settled?: (node: NodeSummary) => boolean},
): Promise<NodeSummary[]> {
  const what = names.length === 1 ? `Node ${names[0]} becoming Ready` : `Nodes ${names.join(', ')} becoming Ready`
  return pollUntil(
    what,
    async () => {
      let nodes: NodeSummary[]
      try {
        nodes = await listNodes(kc)
      } catch {
        return undefined
      }
      const wanted = nodes.filter((n) => names.includes(n.name))
      options.onChange?.(wanted)
      const done = (n: NodeSummary) => n.ready || options.settled?.(n) === true
      return wanted.length === names.length && wanted.every(done) ? wanted : undefined
    },
    {intervalMs: 1000, ...options},
  )
}
