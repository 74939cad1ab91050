import type {KubeConfig} from '@kubernetes/client-node'

import {HybridError} from '../errors.js'
import type {NodeSummary} from './nodes.js'
import {pollUntil, type WaitOptions} from './readiness.js'
import {readNode} from './worker-node.js'

/**
 * Wait until Node `name` is Ready and its kubelet reports `version` (an upgrade: the Ready condition an
 * older kubelet posted lasts past its restart, so readiness alone proves nothing until the version moved).
 * API errors while waiting count as "not yet"; at the end one sentence says what the Node reports.
 */
export async function waitNodeOnVersion(
  kc: KubeConfig,
  name: string,
  version: string,
  options: WaitOptions & {readonly what?: string},
): Promise<NodeSummary> {
  let last: NodeSummary | undefined
  try {
    return await pollUntil(
      `Node ${name} Ready on k3s ${version}`,
      async () => {
        try {
          last = (await readNode(kc, name)) ?? last
        } catch {
          return undefined
        }
        return last && last.ready && last.version === version ? last : undefined
      },
      {intervalMs: 1000, ...options},
    )
  } catch (error) {
    if (options.signal?.aborted || !(error instanceof HybridError) || error.code !== 'TIMEOUT') throw error
    const seen = !last
      ? 'there is no such Node'
      : `it reports ${last.version || 'no version'}${last.ready ? ', Ready' : `, NotReady (${last.reason})`}`
    throw new HybridError(
      'K3S_UPGRADE_FAILED',
      `${options.what ?? `Node ${name}`} did not come back Ready on k3s ${version} within ${Math.round(options.timeoutMs / 1000)} s: ${seen}`,
    )
  }
}
