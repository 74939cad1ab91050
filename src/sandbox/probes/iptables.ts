import {findProgram} from './find-program.js'
import {inThrowawayNetns} from './netns.js'
import {runTool, shellQuote, toolFailure} from './run-tool.js'

/**
 * Which iptables backends work: nf_tables (`iptables-nft`) and the legacy x_tables one
 * (`iptables-legacy`). Each lists the filter table inside a throwaway network namespace, so even a
 * backend that creates its tables on first use changes nothing on the machine.
 */
export interface BackendFacts {
  readonly tried: boolean
  readonly works?: boolean
  /** The program used (absolute path). */
  readonly program?: string
  readonly evidence: string
}

export interface IptablesFacts {
  readonly nft: BackendFacts
  readonly legacy: BackendFacts
}

export async function probeIptables(signal: AbortSignal): Promise<IptablesFacts> {
  const nft = await tryBackend('nft', await backendProgram('nft', signal), signal)
  const legacy = await tryBackend('legacy', await backendProgram('legacy', signal), signal)
  return {nft, legacy}
}

/** `iptables-<backend>`, else plain `iptables` when its version line names that backend. */
async function backendProgram(backend: 'nft' | 'legacy', signal: AbortSignal): Promise<string | undefined> {
  const own = findProgram(`iptables-${backend}`)
  if (own) return own
  const plain = findProgram('iptables')
  if (!plain) return undefined
  const version = await runTool(plain, ['-V'], {signal})
  const says = backend === 'nft' ? /nf_tables/ : /legacy/
  return says.test(version.stdout) ? plain : undefined
}

async function tryBackend(
  backend: 'nft' | 'legacy',
  program: string | undefined,
  signal: AbortSignal,
): Promise<BackendFacts> {
  if (!program) return {tried: false, evidence: `${backend}: not tried (no iptables-${backend} installed)`}
  const run = await inThrowawayNetns(`exec ${shellQuote(program)} -w 5 -t filter -L -n`, signal)
  if (!run.result) return {tried: false, program, evidence: `${backend}: not tried (${run.unavailable})`}
  if (run.result.ok) return {tried: true, works: true, program, evidence: `${backend}: works`}
  return {tried: true, works: false, program, evidence: `${backend}: ${toolFailure(run.result, program)}`}
}
