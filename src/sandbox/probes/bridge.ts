import {failedStep, inThrowawayNetns} from './netns.js'
import {toolFailure} from './run-tool.js'

/**
 * Can flannel work here? It needs a bridge (cni0) in promiscuous mode and a vxlan device. Tried in a
 * throwaway network namespace (see netns.ts), so the machine's own interfaces are never touched.
 */
export interface BridgeFacts {
  /** False when no namespace could be made, so nothing was tried. */
  readonly tried: boolean
  readonly works?: boolean
  readonly evidence: string
}

const STEPS = ['creating a bridge', 'setting the bridge promiscuous', 'creating a vxlan device'] as const

export async function probeBridge(signal: AbortSignal): Promise<BridgeFacts> {
  const script = [
    'command -v ip >/dev/null || exit 9',
    'ip link add hybrid-br0 type bridge || exit 10',
    'ip link set hybrid-br0 promisc on || exit 11',
    'ip link add hybrid-vx0 type vxlan id 42 dstport 8472 || exit 12',
  ].join('; ')
  const run = await inThrowawayNetns(script, signal)
  if (!run.result) return {tried: false, evidence: `not tried: ${run.unavailable}`}
  if (run.result.code === 9) return {tried: false, evidence: 'not tried: ip (iproute2) is not installed'}
  const step = failedStep(run.result, STEPS)
  if (!step)
    return {
      tried: true,
      works: true,
      evidence: `in a throwaway network namespace (${run.via}): a bridge goes promiscuous and a vxlan device is created`,
    }
  return {
    tried: true,
    works: false,
    evidence: `in a throwaway network namespace (${run.via}): ${step} fails: ${toolFailure(run.result, 'ip')}`,
  }
}
