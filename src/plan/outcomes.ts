import type {ExitCode} from '../errors.js'
/**
 * What happened to each host across a whole run (all phases), and the exit-code rule of docs/architecture.md, "Exit codes".
 *
 * A host is pending until the end of the run unless something ends its part early: a failed step
 * (failed), a step that decides the host is out of this run (skipped). Failed and skipped hosts are
 * left out of every later phase. When the run ends, the runner settles the pending ones: ok if the run
 * finished, interrupted if it was stopped (SIGINT), skipped if a phase failed before they were done.
 */

export type HostStatus = 'ok' | 'failed' | 'skipped' | 'interrupted'

/** One host's outcome, as the summary table and `--json` show it. */
export interface HostOutcome {
  readonly host: string
  readonly status: HostStatus
  /** The phase and the step the host last started ("reached"); absent if it never started one. */
  readonly phase?: string
  readonly step?: string
  /** Steps finished without error, over all phases. */
  readonly stepsDone: number
  /** From the host's first step starting to its last step ending. */
  readonly elapsedMs: number
  /** For failed hosts: the error as one sentence (redacted). */
  readonly error?: string
  /** For skipped and interrupted hosts: why. */
  readonly reason?: string
}

interface Entry {
  host: string
  final?: HostStatus
  phase?: string
  step?: string
  stepsDone: number
  startedAt?: number
  endedAt?: number
  error?: string
  reason?: string
}

/** The per-host record of one run. The pool writes it; the runner settles it; commands read it. */
export class HostLedger {
  private readonly entries = new Map<string, Entry>()

  /** Name hosts up front (e.g. every worker of the inventory), so hosts no phase reached still show. */
  expect(hosts: readonly string[]): void {
    for (const host of hosts) this.entry(host)
  }

  /** Has this host's part of the run ended (failed or skipped)? Later phases leave it out. */
  isSettled(host: string): boolean {
    return this.entries.get(host)?.final !== undefined
  }

  stepStarted(host: string, phase: string, step: string, now = Date.now()): void {
    const e = this.entry(host)
    e.phase = phase
    e.step = step
    e.startedAt ??= now
  }

  stepDone(host: string, now = Date.now()): void {
    const e = this.entry(host)
    e.stepsDone++
    e.endedAt = now
  }

  failed(host: string, error: string, now = Date.now()): void {
    const e = this.entry(host)
    e.final = 'failed'
    e.error = error
    e.endedAt = now
  }

  skipped(host: string, reason: string, now = Date.now()): void {
    const e = this.entry(host)
    e.final = 'skipped'
    e.reason = reason
    if (e.startedAt !== undefined) e.endedAt = now
  }

  /**
   * End of the run: every host still pending gets its final status. `finished`: the plan ran to its
   * end; `interrupted`: it was stopped by a signal; otherwise a phase failed (`failedPhase`).
   */
  settle(how: {finished: true} | {interrupted: true} | {failedPhase: string}): void {
    for (const e of this.entries.values()) {
      if (e.final) continue
      if ('finished' in how) {
        if (e.startedAt === undefined) {
          e.final = 'skipped'
          e.reason = 'no phase had work for this host'
        } else e.final = 'ok'
      } else if ('interrupted' in how) {
        e.final = 'interrupted'
        e.reason = e.step ? `interrupted after step "${e.step}"` : 'interrupted before it started'
      } else {
        e.final = 'skipped'
        e.reason = `not finished: phase "${how.failedPhase}" failed`
      }
    }
  }

  /** Every host's outcome, in the order hosts were first named. Pending hosts show as interrupted. */
  outcomes(now = Date.now()): HostOutcome[] {
    return [...this.entries.values()].map((e) => ({
      host: e.host,
      status: e.final ?? 'interrupted',
      ...(e.phase === undefined ? {} : {phase: e.phase}),
      ...(e.step === undefined ? {} : {step: e.step}),
      stepsDone: e.stepsDone,
      elapsedMs: e.startedAt === undefined ? 0 : (e.endedAt ?? now) - e.startedAt,
      ...(e.error === undefined ? {} : {error: e.error}),
      ...(e.reason === undefined ? {} : {reason: e.reason}),
    }))
  }

  private entry(host: string): Entry {
    let e = this.entries.get(host)
    if (!e) {
      e = {host, stepsDone: 0}
      this.entries.set(host, e)
    }
    return e
  }
}

/**
 * 0 when every host is done, 1 when none is, 3 when some are ("partly done; a re-run
 * resumes"). Done = ok or skipped (nothing to do for it); not done = failed or interrupted. No hosts
 * at all: 0.
 */
export function hostsExitCode(statuses: readonly HostStatus[]): ExitCode {
  const notDone = statuses.filter((s) => s === 'failed' || s === 'interrupted').length
  if (notDone === 0) return 0
  return notDone === statuses.length ? 1 : 3
}
