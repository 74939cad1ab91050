import type {Logger} from '../log/logger.js'
import {redactString} from '../log/redact.js'
import {HostLedger} from './outcomes.js'
import {type Progress, silentProgress} from './progress-events.js'

/**
 * The phase contract (docs/architecture.md, "Plans and phases") and the context every phase gets. An
 * action starts from a base context that extends PlanContext (the cluster, its paths, the inventory);
 * each phase declares the context it reads and returns what it gives, and `Plan` checks the order.
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

/** What a phase gives the phases after it: an object merged into the context, or nothing. */
export type Gives = object | void

export interface Phase<C extends PlanContext = PlanContext, G extends Gives = void> {
  /** Imperative and short; names the phase in progress, logs and the summary ("install agents"). */
  readonly title: string
  /** Choose the hosts and inputs the phase works on (runs before shouldRun). */
  prepare?(ctx: C): void | Promise<void>
  /**
   * Default true. A phase with nothing to do says so; it is recorded as skipped with the reason. A phase
   * that may be skipped gives only optional fields, so no later phase relies on what it did not give.
   */
  shouldRun?(ctx: C): ShouldRun | Promise<ShouldRun>
  /** Does the step; what it returns is merged into the context for the phases after it. */
  run(ctx: C): G | Promise<G>
  /**
   * Undo what run() left half done. Called only when the run fails or is interrupted, in reverse order,
   * for every phase whose run() was called (the failing one included; what it gave may be missing then).
   * ctx.signal is already aborted when interrupted: clean-ups must not give up because of it.
   */
  cleanUp?(ctx: C & (G extends object ? Partial<G> : unknown)): void | Promise<void>
}

/** The context after a plan ran to its end: its base, and everything its phases gave. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PlanOutput<P> = P extends Plan<any, infer C> ? C : never

/** A phase of any context, as the runner holds it (the plan builder has checked its inputs). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPhase = Phase<any, Gives>

/** `{missing: 'k3s' | 'state'}` when context C lacks what a phase needing N reads: a compile error naming the keys. */
type Needs<C, N> = [C] extends [N] ? unknown : {readonly missing: Exclude<keyof N, keyof C>}
type Merged<C, G> = G extends object ? Omit<C, keyof G> & G : C

/**
 * An ordered list of phases whose inputs the compiler checks: `Plan.start<Base>().then(a).then(b)` only
 * compiles when `b` needs nothing beyond the base context and what `a` gives. Phases stay plain objects;
 * the runner merges each phase's result into the context.
 */
export class Plan<Base extends PlanContext, C = Base> {
  private constructor(readonly phases: readonly AnyPhase[]) {}

  /** A plan that runs against a context of type Base. */
  static start<Base extends PlanContext>(): Plan<Base> {
    return new Plan<Base>([])
  }

  then<N extends PlanContext, G extends Gives>(phase: Phase<N, G> & Needs<C, N>): Plan<Base, Merged<C, G>> {
    return new Plan<Base, Merged<C, G>>([...this.phases, phase as AnyPhase])
  }
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
