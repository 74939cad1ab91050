import type {Logger} from '../log/logger.js'
import {redactString} from '../log/redact.js'
import {HybridError, messageOf} from '../errors.js'
import {withDeadline} from '../util/abort.js'
import type {PlanContext} from './phase.js'

/**
 * Per-host work, at most `concurrency` hosts at once, as a sliding window: as soon as one host is
 * through all of its steps the next host starts; there is no barrier between steps, so a fast host
 * never waits for a slow one. One host's failure is recorded for that host and the others go on.
 */

/** One item's fate in runPool. */
export type Settled = {status: 'fulfilled'} | {status: 'rejected'; reason: unknown} | {status: 'not-started'}

/**
 * Run `worker` for every item, never more than `concurrency` at once, starting the next item the moment
 * one finishes. After `signal` aborts no item starts; those in flight finish. Never rejects.
 */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<Settled[]> {
  const settled: Settled[] = items.map(() => ({status: 'not-started'}))
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) {
      const index = next++
      try {
        await worker(items[index], index)
        settled[index] = {status: 'fulfilled'}
      } catch (reason) {
        settled[index] = {status: 'rejected', reason}
      }
    }
  }
  const lanes = Math.max(1, Math.min(Math.floor(concurrency), items.length))
  await Promise.all(Array.from({length: lanes}, lane))
  return settled
}

/** What a host step gets besides its item. */
export interface HostHandle {
  readonly name: string
  /** Lines carry `host` (and the phase and step). */
  readonly logger: Logger
  /** The run's signal; a step may pass it to long waits. In-flight steps are allowed to finish. */
  readonly signal: AbortSignal
  /** Upload progress of the current step (shown as bytes done/total). */
  bytes(done: number, total: number): void
  /**
   * End this host's part of the run here, as skipped with `reason` (not a failure): its remaining
   * steps and every later phase leave it out. For "already up to date", just return instead.
   */
  skip(reason: string): never
}

export interface HostStep<H> {
  /** Short and imperative: "upload k3s". */
  readonly title: string
  run(item: H, host: HostHandle): void | Promise<void>
  /**
   * How long the step may take for this item; past it the host fails with a sentence and the pool's
   * onDeadline lets go of whatever the step still holds. No deadline when absent.
   */
  deadlineMs?(item: H): number
}

export interface ForEachHostOptions<H> {
  /** The host name of an item (the worker's name). */
  name(item: H): string
  steps: readonly HostStep<H>[]
  /** Default ctx.concurrency. */
  concurrency?: number
  /** A step of this item outlived its deadline: end what it holds (its connection), so it stops too. */
  onDeadline?(item: H): void | Promise<void>
}

/** Thrown by HostHandle.skip; carries the reason to the pool. */
class HostSkipped extends Error {
  constructor(readonly reason: string) {
    super(reason)
  }
}

/** An error as one redacted sentence: its first line. */
export function errorSentence(error: unknown): string {
  return redactString(messageOf(error)).split('\n')[0].trim() || 'unknown error'
}

/**
 * Run `steps`, in order, for each item, in the pool. Items whose host already failed or was skipped
 * earlier in the run are left out. Returns the items that went through every step.
 */
export async function forEachHost<H>(
  ctx: PlanContext,
  items: readonly H[],
  options: ForEachHostOptions<H>,
): Promise<H[]> {
  const {ledger, progress} = ctx
  const phase = ledger.phase
  const active = items.filter((item) => !ledger.hosts.isSettled(options.name(item)))
  const hostNames = active.map((item) => options.name(item))
  ledger.hosts.expect(hostNames)
  const completed = new Set<number>()
  progress.report({event: 'pool', phase, status: 'start', hosts: hostNames})

  const runHost = async (item: H, index: number): Promise<void> => {
    const name = hostNames[index]
    let currentStep = ''
    const handle: HostHandle = {
      name,
      logger: ctx.logger.child({host: name}),
      signal: ctx.signal,
      bytes: (done, total) => progress.report({event: 'bytes', phase, host: name, step: currentStep, done, total}),
      skip: (reason) => {
        throw new HostSkipped(reason)
      },
    }
    for (const step of options.steps) {
      // Between steps, an interrupted run stops the host (the step in flight has finished).
      if (ctx.signal.aborted) return
      currentStep = step.title
      const started = Date.now()
      ledger.hosts.stepStarted(name, phase, step.title, started)
      progress.report({event: 'step', phase, host: name, step: step.title, status: 'start'})
      try {
        const work = Promise.resolve(step.run(item, handle))
        const ms = step.deadlineMs?.(item)
        await (ms === undefined
          ? work
          : withDeadline(work, ms, () => {
              void options.onDeadline?.(item)
              return new HybridError(
                'STEP_TIMEOUT',
                `${name}: ${step.title} did not finish within ${Math.round(ms / 1000)}s, so the worker was let go`,
              )
            }))
      } catch (error) {
        const elapsedMs = Date.now() - started
        if (error instanceof HostSkipped) {
          const reason = redactString(error.reason)
          ledger.hosts.skipped(name, reason)
          progress.report({event: 'step', phase, host: name, step: step.title, status: 'skipped', elapsedMs, reason})
          return
        }
        const sentence = errorSentence(error)
        ledger.hosts.failed(name, sentence)
        handle.logger.debug({err: error, phase, step: step.title}, `${step.title} failed`)
        progress.report({
          event: 'step',
          phase,
          host: name,
          step: step.title,
          status: 'failed',
          elapsedMs,
          error: sentence,
        })
        return
      }
      ledger.hosts.stepDone(name)
      progress.report({
        event: 'step',
        phase,
        host: name,
        step: step.title,
        status: 'done',
        elapsedMs: Date.now() - started,
      })
    }
    completed.add(index)
  }

  try {
    await runPool(active, options.concurrency ?? ctx.concurrency, runHost, ctx.signal)
  } finally {
    progress.report({event: 'pool', phase, status: 'end', hosts: hostNames})
  }
  return active.filter((_item, index) => completed.has(index))
}
