/**
 * Every probe runs under a time limit: a probe that hangs (a stuck mount, a tool waiting on a lock) is
 * reported as "probe timed out", never a hung preflight. The probe gets an AbortSignal that fires at
 * the limit, so it kills its child processes and cleans up; `done` settles once that clean-up is over,
 * and callers wait for it (briefly) before exiting, so a timed-out probe still leaves nothing behind.
 */

/** Default limit per probe; HYBRID_PROBE_TIMEOUT_SECONDS overrides it (slow sandboxes, tests). */
export function probeLimitMs(): number {
  const seconds = Number(process.env.HYBRID_PROBE_TIMEOUT_SECONDS)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 20_000
}

export type Limited<T> =
  | {readonly timedOut: false; readonly value: T; readonly done: Promise<void>}
  | {readonly timedOut: true; readonly limitMs: number; readonly done: Promise<void>}

/** The reason a limited probe's signal carries. */
export class ProbeTimeout extends Error {
  constructor(readonly limitMs: number) {
    super(`probe timed out after ${formatSeconds(limitMs)}`)
    this.name = 'ProbeTimeout'
  }
}

export function formatSeconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`
}

/**
 * Run `fn` with a signal that aborts after `limitMs`. Resolves with its value, or `timedOut` at the
 * limit; rejects only when `fn` itself throws before the limit.
 */
export function withTimeLimit<T>(limitMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<Limited<T>> {
  const controller = new AbortController()
  let started: Promise<T>
  try {
    started = fn(controller.signal)
  } catch (error) {
    started = Promise.reject(asError(error))
  }
  const done = started.then(
    () => undefined,
    () => undefined,
  )
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort(new ProbeTimeout(limitMs))
      resolve({timedOut: true, limitMs, done})
    }, limitMs)
    started.then(
      (value) => {
        clearTimeout(timer)
        resolve({timedOut: false, value, done})
      },
      (error: unknown) => {
        clearTimeout(timer)
        if (controller.signal.aborted) resolve({timedOut: true, limitMs, done})
        else reject(asError(error))
      },
    )
  })
}

/** What `fn` threw, as an Error (a thrown string keeps its text). */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
