import {readFile} from 'node:fs/promises'

import type {Logger} from 'pino'

import type {InterceptCounters} from '../interceptor/index.js'
import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * The counters file: the interceptor's counters summed over every k3s run of one supervisor, written
 * (JSON, 0600) by the supervisor while k3s runs, read by `hybrid status`. Its one writer and one reader.
 */
export interface CountersFile {
  /** When the supervisor last wrote it (ISO 8601). */
  readonly updatedAt: string
  readonly k3sPid: number | null
  readonly restarts: number
  readonly counters: InterceptCounters
}

export const NO_COUNTERS: InterceptCounters = Object.freeze({
  stops: 0,
  syscalls: {},
  rewrites: {},
  missed: {},
  signals: 0,
  tracees: 0,
})

function addByKey(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum = {...a}
  for (const [key, value] of Object.entries(b)) sum[key] = (sum[key] ?? 0) + value
  return sum
}

/** The counters of two runs together: numbers add, counts by name or path add name by name. */
export function addCounters(a: InterceptCounters, b: InterceptCounters): InterceptCounters {
  return {
    stops: a.stops + b.stops,
    syscalls: addByKey(a.syscalls, b.syscalls),
    rewrites: addByKey(a.rewrites, b.rewrites),
    missed: addByKey(a.missed, b.missed),
    signals: a.signals + b.signals,
    tracees: a.tracees + b.tracees,
  }
}

/** The totals of finished runs plus the current one; `tracees` counts what is alive now, so only the current run's. */
export function runningTotals(finished: InterceptCounters, current: InterceptCounters): InterceptCounters {
  return {...addCounters(finished, current), tracees: current.tracees}
}

/** Replace the counters file; a failure only costs `status` a fresh figure, so it is logged at debug. */
export async function writeCountersFile(
  file: string,
  document: Omit<CountersFile, 'updatedAt'>,
  logger: Logger,
): Promise<void> {
  const full: CountersFile = {updatedAt: new Date().toISOString(), ...document}
  try {
    await writeFileAtomic(file, `${JSON.stringify(full)}\n`, 0o600)
  } catch (error) {
    logger.debug({err: error}, 'could not write interceptor counters')
  }
}

/** The counters file as the supervisor last wrote it; undefined when there is none (no interceptor) or it is not one. */
export async function readCountersFile(file: string): Promise<CountersFile | undefined> {
  let document: Partial<CountersFile>
  try {
    document = JSON.parse(await readFile(file, 'utf8')) as Partial<CountersFile>
  } catch {
    return undefined
  }
  if (typeof document?.updatedAt !== 'string' || typeof document.counters !== 'object' || !document.counters)
    return undefined
  return {
    updatedAt: document.updatedAt,
    k3sPid: typeof document.k3sPid === 'number' ? document.k3sPid : null,
    restarts: typeof document.restarts === 'number' ? document.restarts : 0,
    counters: {...NO_COUNTERS, ...document.counters},
  }
}
