import {type ExitCode, HybridError} from '../errors.js'
import {redactString} from '../log/redact.js'
import {type HostOutcome, hostsExitCode} from './outcomes.js'
import {type AnyPhase, type Change, Plan, type PlanContext} from './phase.js'
import {errorSentence} from './pool.js'

/**
 * Runs phases in order: prepare, shouldRun, run. On a failure or an interruption it
 * stops and calls cleanUp of every phase whose run() was called, newest first; a clean-up that fails
 * is logged and recorded, and never hides the error that caused it. The result says everything a
 * command prints: phases, hosts, changes (or, under --dry-run, the changes that would be made), exit code.
 */

export type PhaseStatus = 'done' | 'skipped' | 'failed' | 'interrupted' | 'not-run'

export interface PhaseRecord {
  readonly title: string
  readonly status: PhaseStatus
  /** Why it was skipped. */
  readonly reason?: string
  /** Why it failed, one redacted sentence. */
  readonly error?: string
  readonly elapsedMs: number
}

/** The error that stopped the plan. `cause` is the thrown value (not part of the JSON summary). */
export interface PlanFailure {
  readonly phase: string
  readonly message: string
  /** HybridError's details lines, redacted. */
  readonly details: readonly string[]
  readonly cause: unknown
}

export interface PlanResult {
  readonly status: 'done' | 'failed' | 'interrupted'
  readonly dryRun: boolean
  /** docs/architecture.md, "Exit codes"; see planExitCode. */
  readonly exitCode: ExitCode
  readonly phases: readonly PhaseRecord[]
  readonly hosts: readonly HostOutcome[]
  readonly changes: readonly Change[]
  readonly failure?: PlanFailure
  readonly cleanupFailures: ReadonlyArray<{readonly phase: string; readonly message: string}>
  readonly elapsedMs: number
}

/**
 * Run a plan against `ctx` (which must hold the plan's base context). What each phase returns is merged
 * into `ctx`, so after a run `ctx` holds everything the phases gave.
 */
export async function runPlan<Base extends PlanContext>(
  plan: Plan<Base, unknown> | readonly AnyPhase[],
  ctx: Base,
): Promise<PlanResult> {
  const phases: readonly AnyPhase[] = plan instanceof Plan ? plan.phases : plan
  const started = Date.now()
  const {ledger, progress} = ctx
  const records: PhaseRecord[] = phases.map((p) => ({title: p.title, status: 'not-run', elapsedMs: 0}))
  const ran: AnyPhase[] = []
  let failure: PlanFailure | undefined
  let interrupted = false

  for (const [i, phase] of phases.entries()) {
    if (ctx.signal.aborted) {
      interrupted = true
      break
    }
    ledger.phase = phase.title
    const phaseStarted = Date.now()
    const elapsed = () => Date.now() - phaseStarted
    try {
      await phase.prepare?.(ctx)
      const decision = phase.shouldRun ? await phase.shouldRun(ctx) : true
      if (decision !== true) {
        const reason = decision === false ? undefined : redactString(decision.skip)
        records[i] = {title: phase.title, status: 'skipped', ...(reason ? {reason} : {}), elapsedMs: elapsed()}
        progress.report({event: 'phase', phase: phase.title, status: 'skipped', ...(reason ? {reason} : {})})
        continue
      }
      progress.report({event: 'phase', phase: phase.title, status: 'start'})
      ran.push(phase)
      const gives: unknown = await phase.run(ctx)
      if (gives && typeof gives === 'object') Object.assign(ctx, gives)
    } catch (error) {
      if (ctx.signal.aborted) {
        // Stopped by the user: whatever the step threw on its way out is a consequence, not the news.
        ctx.logger.debug({err: error, phase: phase.title}, 'error while interrupted')
        interrupted = true
      } else {
        const message = errorSentence(error)
        const details = error instanceof HybridError ? error.details.map(redactString) : []
        failure = {phase: phase.title, message, details, cause: error}
        ctx.logger.debug({err: error, phase: phase.title}, `phase ${phase.title} failed`)
        records[i] = {title: phase.title, status: 'failed', error: message, elapsedMs: elapsed()}
        progress.report({event: 'phase', phase: phase.title, status: 'failed', error: message, elapsedMs: elapsed()})
        break
      }
    }
    if (ctx.signal.aborted) interrupted = true
    records[i] = {title: phase.title, status: interrupted ? 'interrupted' : 'done', elapsedMs: elapsed()}
    progress.report({
      event: 'phase',
      phase: phase.title,
      status: interrupted ? 'interrupted' : 'done',
      elapsedMs: elapsed(),
    })
    if (interrupted) break
  }

  const cleanupFailures = failure || interrupted ? await cleanUp(ran, ctx) : []
  ledger.hosts.settle(failure ? {failedPhase: failure.phase} : interrupted ? {interrupted: true} : {finished: true})
  const hosts = ledger.hosts.outcomes()
  for (const outcome of hosts) progress.report({event: 'host', ...outcome})
  const status = failure ? 'failed' : interrupted ? 'interrupted' : 'done'
  return {
    status,
    dryRun: ctx.dryRun,
    exitCode: planExitCode(status, hosts, failure?.cause),
    phases: records,
    hosts,
    changes: [...ledger.changes],
    ...(failure ? {failure} : {}),
    cleanupFailures,
    elapsedMs: Date.now() - started,
  }
}

/** Clean-ups of the phases that ran, newest first; each failure is logged and collected. */
async function cleanUp(ran: readonly AnyPhase[], ctx: PlanContext): Promise<Array<{phase: string; message: string}>> {
  const failures: Array<{phase: string; message: string}> = []
  for (const phase of [...ran].reverse()) {
    if (!phase.cleanUp) continue
    ctx.ledger.phase = phase.title
    ctx.progress.report({event: 'cleanup', phase: phase.title, status: 'start'})
    try {
      await phase.cleanUp(ctx)
      ctx.progress.report({event: 'cleanup', phase: phase.title, status: 'done'})
    } catch (error) {
      const message = errorSentence(error)
      failures.push({phase: phase.title, message})
      ctx.logger.error({err: error, phase: phase.title}, `clean-up of ${phase.title} failed: ${message}`)
      ctx.progress.report({event: 'cleanup', phase: phase.title, status: 'failed', error: message})
    }
  }
  return failures
}

/**
 * The exit code of a run: a failed phase gives its HybridError's code (else 1); otherwise the hosts
 * decide (hostsExitCode); an interrupted run is never 0.
 */
export function planExitCode(status: PlanResult['status'], hosts: readonly HostOutcome[], cause?: unknown): ExitCode {
  if (status === 'failed') return cause instanceof HybridError ? cause.exitCode : 1
  const code = hostsExitCode(hosts.map((h) => h.status))
  return status === 'interrupted' && code === 0 ? 1 : code
}
