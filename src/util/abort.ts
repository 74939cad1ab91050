/** An AbortSignal as a promise, for races against other work (one helper for every caller). */

/** Resolves once `signal` aborts (at once if it already has); never settles otherwise. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), {once: true})
  })
}

/**
 * Rejects with the signal's reason once `signal` aborts; never settles otherwise. Already handled, so a
 * race that settles first leaves no unhandled rejection behind.
 */
export function abortedPromise(signal: AbortSignal): Promise<never> {
  const aborted = whenAborted(signal).then((): never => {
    throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))
  })
  aborted.catch(() => {})
  return aborted
}

/**
 * `work`'s value, or the error `late()` makes once `ms` have passed, whichever comes first. The work is
 * not stopped by this: the caller lets go of what it holds (closes its connection or channel).
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(late()), ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
