import {mkdir, readFile, rename, rm, rmdir} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HybridError} from '../errors.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {isAlive, processStartTicks} from '../util/processes.js'
import {clusterPaths} from './cluster-state.js'

/**
 * One mutating run at a time per cluster (`up`, `down`, `workers add|remove`): `clusters/<name>/run.lock`
 * names the run that holds it (pid, its start time, what it runs, since when). A second run is refused
 * at once, naming the first, or waits for it a bounded time (`--wait SECONDS`). A lock whose holder is
 * gone (no such pid, or a pid started at another time: recycled) is taken over. docs/architecture.md,
 * "Concurrency", says which part of `up` holds it.
 */

export interface RunLockHolder {
  readonly pid: number
  /** The holder's start time in clock ticks since boot (/proc/PID/stat), so a recycled pid is not it. */
  readonly startTicks: number
  /** What it runs, e.g. "up --inventory lab.yaml" (flags and file names only: hybrid's argv holds no secret). */
  readonly command: string
  readonly startedAt: string
}

export interface RunLock {
  readonly holder: RunLockHolder
  release(): Promise<void>
}

export function runLockFile(cluster: string): string {
  return join(clusterPaths(cluster).dir, 'run.lock')
}

/**
 * Take the cluster's run lock for `command`. `waitSeconds` 0 refuses at once when another live run holds
 * it; more waits that long (polling), then refuses. The refusal (CLUSTER_LOCKED, exit 1) names the holder.
 */
export async function acquireRunLock(
  cluster: string,
  command: string,
  options: {readonly waitSeconds?: number; readonly signal?: AbortSignal} = {},
): Promise<RunLock> {
  const file = runLockFile(cluster)
  const startTicks = await processStartTicks(process.pid)
  const holder: RunLockHolder = {
    pid: process.pid,
    startTicks: startTicks ?? 0,
    command,
    startedAt: new Date().toISOString(),
  }
  const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000
  for (;;) {
    await mkdir(clusterPaths(cluster).dir, {recursive: true, mode: 0o700})
    try {
      await writeFileAtomic(file, `${JSON.stringify(holder, null, 2)}\n`, 0o600, {exclusive: true})
      return {holder, release: () => releaseRunLock(cluster, holder)}
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') continue // the directory was removed by a run releasing its lock: again
      if (code !== 'EEXIST') throw error
    }
    const current = await readRunLock(cluster)
    if (!current || !(await holderAlive(current))) {
      // Gone (or unreadable: a holder killed before its lock was whole cannot be, the lock is written by link):
      // move it aside under a name of our own, so two takers never remove each other's fresh lock.
      const aside = `${file}.stale-${process.pid}`
      await rename(file, aside).catch(() => undefined)
      await rm(aside, {force: true})
      continue
    }
    if (current.pid === process.pid) return {holder: current, release: async () => undefined}
    if (Date.now() >= deadline || options.signal?.aborted) throw lockedError(cluster, current, options.waitSeconds ?? 0)
    await sleep(250)
  }
}

/** Who holds the cluster's run lock now (undefined: nobody, or the file is unreadable). */
export async function readRunLock(cluster: string): Promise<RunLockHolder | undefined> {
  try {
    const holder = JSON.parse(await readFile(runLockFile(cluster), 'utf8')) as RunLockHolder
    return typeof holder.pid === 'number' ? holder : undefined
  } catch {
    return undefined
  }
}

/** Is the recorded holder still that very process (same pid, same start time)? */
export async function holderAlive(holder: RunLockHolder): Promise<boolean> {
  if (!(await isAlive(holder.pid))) return false
  return (await processStartTicks(holder.pid)) === holder.startTicks
}

/** Remove the lock if it is still ours (a lock taken over from us is left to its new holder). */
async function releaseRunLock(cluster: string, holder: RunLockHolder): Promise<void> {
  const current = await readRunLock(cluster)
  if (current?.pid !== holder.pid || current.startTicks !== holder.startTicks) return
  await rm(runLockFile(cluster), {force: true})
  // A run that left nothing else (a failed first up, a down) leaves no empty directory either.
  await rmdir(clusterPaths(cluster).dir).catch(() => undefined)
}

function lockedError(cluster: string, holder: RunLockHolder, waited: number): HybridError {
  const after = waited > 0 ? ` (waited ${waited}s)` : ''
  return new HybridError(
    'CLUSTER_LOCKED',
    `cluster ${cluster} is being changed by another hybrid${after}: pid ${holder.pid}, \`hybrid ${holder.command}\`, since ${holder.startedAt}; let it finish, or run again with --wait SECONDS`,
  )
}

/** The command a lock names: the subcommand and its flags as typed, file arguments kept, nothing else. */
export function commandSummary(argv: readonly string[]): string {
  return argv.join(' ').slice(0, 200)
}
