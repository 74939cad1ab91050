import {setTimeout as sleep} from 'node:timers/promises'

import {Health, type KubeConfig} from '@kubernetes/client-node'

import {HybridError} from '../errors.js'
import {serverOf} from './client.js'

export interface WaitOptions {
  /** Give up after this long (HybridError naming what was awaited). */
  readonly timeoutMs: number
  /** Stop waiting early (the supervisor's k3s died, SIGINT): rejects with the signal's reason. */
  readonly signal?: AbortSignal
  /** Pause between attempts. */
  readonly intervalMs?: number
}

/** One `/readyz` request, bounded in time: true when the API server answers ready. */
export async function apiReady(kc: KubeConfig, timeoutMs = 5000): Promise<boolean> {
  try {
    return await new Health(kc).readyz({signal: AbortSignal.timeout(timeoutMs)})
  } catch {
    return false // refused, reset, TLS not yet set up, timed out: not ready yet
  }
}

/**
 * Poll until `check` returns a value (not undefined), or the time is up, or `signal` aborts. The one
 * waiting loop behind every readiness wait, so they all time out and abort alike.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  const interval = options.intervalMs ?? 500
  for (;;) {
    options.signal?.throwIfAborted()
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() + interval > deadline)
      throw new HybridError('TIMEOUT', `${what} did not happen within ${Math.round(options.timeoutMs / 1000)} s`)
    try {
      await sleep(interval, undefined, {signal: options.signal})
    } catch {
      options.signal?.throwIfAborted()
    }
  }
}

/** Wait for the API server's `/readyz` to answer ready. */
export async function waitApiReady(kc: KubeConfig, options: WaitOptions): Promise<void> {
  await pollUntil(
    `the API server at ${serverOf(kc)} becoming ready`,
    async () => ((await apiReady(kc)) ? true : undefined),
    options,
  )
}
