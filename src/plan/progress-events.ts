import type {HostOutcome} from './outcomes.js'

/**
 * What a run reports while it goes. With `--json` each event is one line of JSON on stdout (and nothing
 * else is written there); on a terminal the per-host rows are redrawn in place; elsewhere the events
 * become plain log lines that carry the host name.
 */
export type ProgressEvent =
  | {
      event: 'phase'
      phase: string
      status: 'start' | 'done' | 'skipped' | 'failed' | 'interrupted'
      reason?: string
      error?: string
      elapsedMs?: number
    }
  | {event: 'cleanup'; phase: string; status: 'start' | 'done' | 'failed'; error?: string}
  | {event: 'pool'; phase: string; status: 'start' | 'end'; hosts: string[]}
  | {
      event: 'step'
      phase: string
      host: string
      step: string
      status: 'start' | 'done' | 'failed' | 'skipped'
      elapsedMs?: number
      error?: string
      reason?: string
    }
  | {event: 'bytes'; phase: string; host: string; step: string; done: number; total: number}
  | ({event: 'host'} & HostOutcome)
  | {event: 'change'; phase: string; host: string; sentence: string; dryRun: boolean}
  | {event: 'result'; result: unknown}

/** How progress is shown: rows redrawn on a terminal, plain log lines, or JSON events on stdout. */
export type ProgressMode = 'tty' | 'plain' | 'json'

/** Progress of one run; every part of the plan reports through it. */
export interface Progress {
  readonly mode: ProgressMode
  report(event: ProgressEvent): void
  /** Stop redrawing; leaves the last frame of the rows on screen. */
  close(): void
}

/** A progress sink that reports nothing (tests; commands with nothing long to show). */
export const silentProgress: Progress = {mode: 'plain', report: () => {}, close: () => {}}
