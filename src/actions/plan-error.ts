import {HybridError} from '../errors.js'
import type {PlanResult} from '../plan/index.js'

/**
 * A failed or interrupted plan as the one error the command prints: the failing phase's error (its code
 * kept), with the clean-ups that failed after it as details.
 */
export function planError(result: PlanResult, retry: string): HybridError {
  const cleanup = result.cleanupFailures.map((f) => `clean-up of "${f.phase}" failed: ${f.message}`)
  if (result.status === 'interrupted' || !result.failure) {
    // A worker's steps are not undone: each is recorded as it is made, and a re-run goes on from there.
    const halfway = result.hosts.filter((h) => h.status === 'interrupted').map((h) => h.host)
    const workers =
      halfway.length === 0 ? '' : `; ${halfway.join(', ')} stopped half way, as recorded (${retry} goes on from there)`
    const sentence =
      cleanup.length === 0
        ? `interrupted; what this run had changed was undone${workers}`
        : `interrupted; some of what this run changed could not be undone (${retry} tries again)${workers}`
    return new HybridError('INTERRUPTED', sentence, {details: cleanup})
  }
  const {failure} = result
  const code = failure.cause instanceof HybridError ? failure.cause.code : 'INTERNAL'
  const exitCode = result.exitCode === 0 ? 1 : result.exitCode
  return new HybridError(code, failure.message, {exitCode, details: [...failure.details, ...cleanup]})
}
