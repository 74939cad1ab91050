import type {Logger} from 'pino'

import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * The interceptor's counters as `hybrid status` reads them: totals over every k3s run of one
 * supervisor, refreshed in a JSON file (0600) while k3s runs.
 */

/** Numbers add up across restarts. */
export type Counters = Record<string, unknown>

/** Numbers add; nested objects (rewrites by path) add key by key; anything else: the newer value. */
export function addCounters(a: Counters, b: Counters): Counters {
  const sum: Counters = {...a}
  for (const [key, value] of Object.entries(b)) {
    const prev = sum[key]
    if (typeof value === 'number' && typeof prev === 'number') sum[key] = prev + value
    else if (value && typeof value === 'object' && prev && typeof prev === 'object' && !Array.isArray(value))
      sum[key] = addCounters(prev as Counters, value as Counters)
    else sum[key] = value
  }
  return sum
}

/** The totals of finished runs plus the current one; `tracees` counts what is alive now, so only the current run's. */
export function runningTotals(finished: Counters, current: Counters): Counters {
  return {...addCounters(finished, current), tracees: current.tracees ?? 0}
}

/** The counters file's document (status.ts reads `updatedAt` and `counters`). */
export interface CountersDocument {
  readonly updatedAt: string
  readonly k3sPid: number | null
  readonly restarts: number
  readonly counters: Counters
}

/** Replace the counters file; a failure only costs `status` a fresh figure, so it is logged at debug. */
export async function writeCountersFile(
  file: string,
  document: Omit<CountersDocument, 'updatedAt'>,
  logger: Logger,
): Promise<void> {
  const full: CountersDocument = {updatedAt: new Date().toISOString(), ...document}
  try {
    await writeFileAtomic(file, `${JSON.stringify(full)}\n`, 0o600)
  } catch (error) {
    logger.debug({err: error}, 'could not write interceptor counters')
  }
}
