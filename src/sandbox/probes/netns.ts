import {runTool, type ToolResult, toolFailure} from './run-tool.js'

/**
 * A throwaway network namespace for probes that change network state (bridges, vxlan, iptables). It is
 * anonymous (unshare(1), not `ip netns add`): it exists only as long as the probe's shell, so nothing can
 * outlive the probe, not even when hybrid is killed, and nothing is written to /run/netns (which, inside
 * gVisor's 9p root, is the host's /run/netns, and where `ip netns add` fails: gVisor refuses its bind mount).
 * Without root, a user namespace that maps us to root is tried.
 */
export interface NetnsRun {
  /** How the namespace was made; undefined: none could be. */
  readonly via?: 'unshare --net' | 'unshare --user --map-root-user --net'
  /** Why no namespace could be made. */
  readonly unavailable?: string
  /** The script's own result (when a namespace was made). */
  readonly result?: ToolResult
}

const READY = 'hybrid-netns-ready'

/** Run a sh script in a fresh network namespace; its exit status and output are the caller's to read. */
export async function inThrowawayNetns(script: string, signal: AbortSignal): Promise<NetnsRun> {
  const body = `echo ${READY}; ${script}`
  const attempts = [['--net'], ['--user', '--map-root-user', '--net']] as const
  let why = ''
  for (const flags of attempts) {
    const result = await runTool('unshare', [...flags, '--', 'sh', '-c', body], {signal})
    if (result.stdout.includes(READY)) return {via: `unshare ${flags.join(' ')}` as NetnsRun['via'], result}
    if (result.aborted) return {unavailable: 'unshare was stopped at the time limit'}
    why = toolFailure(result, 'unshare')
    if (result.spawnError === 'ENOENT') break
  }
  return {unavailable: `no network namespace could be made (${why})`}
}

/** The exit status a failed step of a probe script reports, mapped back to the step. */
export function failedStep(result: ToolResult, steps: readonly string[]): string | undefined {
  if (result.ok) return undefined
  const index = (result.code ?? 0) - 10
  return steps[index] ?? `the probe script (exit ${result.code})`
}
