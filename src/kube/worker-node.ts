import {CoreV1Api, type KubeConfig} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'
import type {WorkerSpec} from '../inventory/model.js'
import {WORKER_LABEL} from '../inventory/node-names.js'
import {statusOf} from './client.js'
import {type NodeSummary, summarizeNode} from './nodes.js'
import {pollUntil, type WaitOptions} from './readiness.js'

/**
 * Which Node is a worker's (docs/architecture.md, "Workers"). A name alone says little: another machine's
 * agent, or the sandbox's own, may hold it. hybrid marks the Nodes it joins with a label its agents set
 * themselves (`node-label`), `hybrid.dev/worker=<cluster>`; a Node joined before that label existed is
 * known by its InternalIP, which was the inventory address then.
 */
export {WORKER_LABEL}

export interface WorkerNodeIdentity {
  /** The worker's name, which is its Node's name. */
  readonly name: string
  readonly cluster: string
  /** Addresses the Node's InternalIP may be for a Node joined before the label: the inventory's. */
  readonly addresses: readonly string[]
}

export function workerNodeIdentity(
  cluster: string,
  worker: Pick<WorkerSpec, 'name' | 'address' | 'internalAddress'>,
): WorkerNodeIdentity {
  const addresses = [worker.address, ...(worker.internalAddress ? [worker.internalAddress] : [])]
  return {name: worker.name, cluster, addresses}
}

/** Is `node` the worker's: its name, and hybrid's label for this cluster or one of the worker's addresses as InternalIP. */
export function isWorkersNode(node: NodeSummary, id: WorkerNodeIdentity): boolean {
  if (node.name !== id.name) return false
  if (node.labels[WORKER_LABEL] === id.cluster) return true
  return node.internalIPs.some((ip) => id.addresses.includes(ip))
}

/** Why a Node of the worker's name is not the worker's, as the end of a sentence about the worker. */
export function notTheWorkersNode(node: NodeSummary, id: WorkerNodeIdentity): string {
  const ip = node.internalIPs.length > 0 ? `InternalIP ${node.internalIPs.join(', ')}` : 'no InternalIP'
  return `a Node named ${id.name} exists that is not this worker: it lacks hybrid's label ${WORKER_LABEL}=${id.cluster} and has ${ip}, not the worker's address`
}

/** The Node of the worker's name as it is now, or undefined when there is none. */
export async function readNode(kc: KubeConfig, name: string): Promise<NodeSummary | undefined> {
  try {
    return summarizeNode(await kc.makeApiClient(CoreV1Api).readNode({name}))
  } catch (error) {
    if (statusOf(error) === 404) return undefined
    throw new HybridError('KUBE_API_FAILED', `cannot read Node ${name}: ${messageOf(error).split('\n')[0]}`)
  }
}

/**
 * Wait until the worker's Node exists, is the worker's and is Ready. A Node of its name that is not the
 * worker's for `graceMs` (its agent, restarted with a new label, brings it up to date within seconds) ends
 * the wait with NODE_NOT_WORKERS; API errors while waiting count as "not yet".
 */
export async function waitWorkerNodeReady(
  kc: KubeConfig,
  id: WorkerNodeIdentity,
  options: WaitOptions & {readonly graceMs?: number; readonly settled?: (node: NodeSummary) => boolean},
): Promise<NodeSummary> {
  const graceMs = options.graceMs ?? 20_000
  let foreignSince: number | undefined
  return pollUntil(
    `Node ${id.name} becoming Ready`,
    async () => {
      let node: NodeSummary | undefined
      try {
        node = await readNode(kc, id.name)
      } catch {
        return undefined
      }
      if (!node) {
        foreignSince = undefined
        return undefined
      }
      if (!isWorkersNode(node, id)) {
        foreignSince ??= Date.now()
        if (Date.now() - foreignSince >= graceMs)
          throw new HybridError(
            'NODE_NOT_WORKERS',
            `${id.name}: ${notTheWorkersNode(node, id)} (another machine's agent, or the sandbox's own, holds that name); rename the worker, or delete that Node if it is stale`,
          )
        return undefined
      }
      foreignSince = undefined
      return node.ready || options.settled?.(node) === true ? node : undefined
    },
    {intervalMs: 1000, ...options},
  )
}
