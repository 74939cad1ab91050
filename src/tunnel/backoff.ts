/**
 * How long a tunnel waits before it dials again: doubling from `initialMs` up to `maxMs`, and back to the
 * start once a connection has stayed up for `resetAfterMs` (a worker that drops once a day is not made to
 * wait 30 s for the time it dropped a week ago).
 */
export interface Backoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly resetAfterMs: number
}

export const DEFAULT_BACKOFF: Backoff = {initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000}

/** The cap on the wait before attempt `failures + 1`, after `failures` attempts in a row that failed or did not last. */
export function backoffCeiling(backoff: Backoff, failures: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, failures - 1))
}

/**
 * The wait itself: somewhere in the upper half of the ceiling ("equal jitter"), so the tunnels of many
 * workers that lost the same sshd or network at once do not all dial again in the same instant.
 */
export function backoffDelay(backoff: Backoff, failures: number, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(backoff, failures)
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}
