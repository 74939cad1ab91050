import {acquireRunLock, holderAlive, readRunLock, type RunLock} from '../state/run-lock.js'
import type {ActionEnv} from './context.js'

/**
 * The cluster's run lock for a mutating action (none under --dry-run, which changes nothing). Release it
 * in a `finally`; releasing twice is harmless.
 */
export async function lockCluster(env: ActionEnv, cluster: string, dryRun: boolean): Promise<RunLock | undefined> {
  if (dryRun) return undefined
  return acquireRunLock(cluster, env.run?.command ?? 'hybrid', {waitSeconds: env.run?.waitSeconds, signal: env.signal})
}

/**
 * The lock for a supervisor's own teardown (Ctrl-C on a foreground `up`, or k3s given up): the stop and
 * the undo must not interleave with a `workers add|remove` or an `up` that only changes the workers. When
 * the holder is the `down` that asked this supervisor to stop, the teardown is part of that run and goes
 * ahead; another holder is waited for (at most `waitSeconds`), after which the teardown goes ahead too,
 * with a warning: stopping on request is never refused.
 */
export async function lockForTeardown(
  env: Pick<ActionEnv, 'logger'>,
  cluster: string,
  waitSeconds = 120,
): Promise<RunLock | undefined> {
  const holder = await readRunLock(cluster)
  if (holder && holder.command.startsWith('down') && (await holderAlive(holder))) return undefined
  try {
    return await acquireRunLock(cluster, 'up (the supervisor stopping the cluster)', {waitSeconds})
  } catch (error) {
    env.logger.warn(`${(error as Error).message}; stopping the cluster anyway`)
    return undefined
  }
}
