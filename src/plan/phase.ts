import type {Logger} from '../log/logger.js'
import {redactString} from '../log/redact.js'
import {HostLedger} from './outcomes.js'
import {type Progress, silentProgress} from './progress.js'

/**
 * The phase contract (DESIGN.md §3, after k0sctl's phase/ package) and the context every phase gets.
 * Commands define their own context by extending PlanContext (e.g. `UpContext` adds the inventory,
 * the state file and the adapters); phases are generic over it, and talk to each other only through it.
 */

/** A change that went (or, under --dry-run, would have gone) through `wet`. */
export interface Change {
  readonly phase: string
  readonly host: string
  /** What changes, as an imperative sentence: "write /etc/rancher/k3s/config.yaml". */
  readonly sentence: string
}

/** The runner's bookkeeping for one run, shared by every copy of the context. */
export interface PlanLedger {
  /** The phase running now (or being cleaned up); `wet` and the pool record it. */
  phase: string
  readonly hosts: HostLedger
  /** Changes made, or under --dry-run the changes that would be made, in order. */
  readonly changes: Change[]
}

export interface PlanContext {
  readonly logger: Logger
  /** --dry-run: `wet` records its sentence instead of acting. */
  readonly dryRun: boolean
  /** Aborted on the first SIGINT: start no new work, let in-flight host steps finish, clean up. */
  readonly signal: AbortSignal
  readonly progress: Progress
  /** Hosts handled at once by forEachHost (the inventory's spec.concurrency). */
  readonly concurrency: number
  readonly ledger: PlanLedger
  /**
   * Every change goes through here. A real run logs `sentence` (debug) and runs `fn`; under --dry-run
   * it records the sentence and returns undefined without running `fn`. Checks that only read (facts,
   * "is it already right?") run outside `wet`, so a dry run shows exactly what a real run would change.
   */
  wet<T>(host: string, sentence: string, fn: () => T | Promise<T>): Promise<T | undefined>
}

/** A phase's answer to "should you run?": true, false, or skip("already running") with a reason. */
export type ShouldRun = boolean | {readonly skip: string}

export function skip(reason: string): ShouldRun {
  return {skip: reason}
}

export interface Phase<C extends PlanContext = PlanContext> {
  /** Imperative and short; names the phase in progress, logs and the summary ("install agents"). */
  readonly title: string
  /** Choose the hosts and inputs the phase works on (runs before shouldRun). */
  prepare?(ctx: C): void | Promise<void>
  /** Default true. A phase with nothing to do says so; it is recorded as skipped with the reason. */
  shouldRun?(ctx: C): ShouldRun | Promise<ShouldRun>
  run(ctx: C): void | Promise<void>
  /**
   * Undo what run() left half done. Called only when the run fails or is interrupted, in reverse order,
   * for every phase whose run() was called (the failing one included). ctx.signal is already aborted
   * when interrupted: clean-ups must not give up because of it.
   */
  cleanUp?(ctx: C): void | Promise<void>
}

export interface PlanContextOptions {
  logger: Logger
  dryRun?: boolean
  signal?: AbortSignal
  progress?: Progress
  concurrency?: number
}

/** The base context; commands spread it into their own: `{...createPlanContext(o), inventory, state}`. */
export function createPlanContext(options: PlanContextOptions): PlanContext {
  const ledger: PlanLedger = {phase: '', hosts: new HostLedger(), changes: []}
  const dryRun = options.dryRun ?? false
  const progress = options.progress ?? silentProgress
  const record = (host: string, sentence: string): void => {
    const change = {phase: ledger.phase, host, sentence: redactString(sentence)}
    ledger.changes.push(change)
    progress.report({event: 'change', ...change, dryRun})
  }
  return {
    logger: options.logger,
    dryRun,
    signal: options.signal ?? new AbortController().signal,
    progress,
    concurrency: Math.max(1, Math.floor(options.concurrency ?? 10)),
    ledger,
    async wet<T>(host: string, sentence: string, fn: () => T | Promise<T>): Promise<T | undefined> {
      if (dryRun) {
        record(host, sentence)
        return undefined
      }
      // Logged before acting, so a step that hangs shows in the debug log what it was doing.
      options.logger.debug({host, phase: ledger.phase}, redactString(sentence))
      const value = await fn()
      record(host, sentence)
      return value
    },
  }
}
