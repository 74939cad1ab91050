import {readFile, rename, rm} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import type {ClusterPaths} from '../state/cluster-state.js'
import {commandLineOf, terminate} from '../util/processes.js'

/**
 * `down` when the state file cannot be parsed: the plan that undoes a cluster from its state cannot run,
 * so this does what can be done without it, best-effort. It reads what it can (the supervisor's pid from
 * its pidfile or the file's text, k3s's pid, the data dir), stops a supervisor that is still hybrid's
 * `up` (its own teardown stops k3s and undoes the workarounds it holds in memory) and a k3s server of
 * this cluster left running, moves the corrupt file aside (`state.json.corrupt-<time>`) and says what it
 * could not do. Every pid is checked against its command line first: a reused pid is never signalled.
 */

export interface CorruptDown {
  /** What was done, one sentence each. */
  readonly changes: readonly string[]
  /** What could not be done or checked, one sentence each (then `down` exits 1). */
  readonly notDone: readonly string[]
}

/** How long the supervisor gets to stop k3s and undo its workarounds before SIGKILL. */
const SUPERVISOR_GRACE_MS = 60_000

export async function downFromCorruptState(cluster: string, paths: ClusterPaths): Promise<CorruptDown> {
  const changes: string[] = []
  const notDone: string[] = []
  const text = await readFile(paths.state, 'utf8').catch(() => '')
  const aside = `${paths.state}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
  try {
    await rename(paths.state, aside)
    changes.push(`moved the corrupt state file aside to ${aside}`)
  } catch (error) {
    notDone.push(`could not move ${paths.state} aside: ${messageOf(error)}`)
  }

  const pidfile = Number((await readFile(paths.pidfile, 'utf8').catch(() => '')).trim()) || undefined
  const supervisor = pidfile ?? numberAfter(text, /"supervisor":\s*\{[^}]*?"pid":\s*(\d+)/)
  let supervisorStopped = false
  if (supervisor && supervisor !== process.pid && (await isHybridUp(supervisor))) {
    const how = await terminate(supervisor, SUPERVISOR_GRACE_MS)
    supervisorStopped = true
    changes.push(
      how === 'killed'
        ? `stopped the supervisor (pid ${supervisor}) with SIGKILL after ${SUPERVISOR_GRACE_MS / 1000}s: it did not finish its own teardown`
        : `stopped the supervisor (pid ${supervisor}); it stopped k3s and undid the workarounds it held`,
    )
    if (how === 'killed') notDone.push('the supervisor was killed before it undid its workarounds')
  }

  const k3s = numberAfter(text, /"k3s":\s*\{[^}]*?"pid":\s*(\d+)/)
  const dataDir = /"dataDir":\s*"([^"]+)"/.exec(text)?.[1]
  if (k3s && (await isK3sServerOf(k3s, dataDir))) {
    const how = await terminate(k3s, 15_000)
    if (how !== 'gone') changes.push(`stopped the k3s server (pid ${k3s}) the supervisor left running`)
  }

  if (!supervisorStopped && !/"workarounds":\s*\[\s*\]/.test(text))
    notDone.push(
      `the workarounds recorded in the corrupt file could not be read, and no supervisor holds them; look in ${aside} for what was applied and undo it by hand`,
    )
  if (notDone.length === 0) await rm(paths.pidfile, {force: true})
  return {changes, notDone}
}

function numberAfter(text: string, pattern: RegExp): number | undefined {
  const value = Number(pattern.exec(text)?.[1])
  return Number.isInteger(value) && value > 1 ? value : undefined
}

/** Is `pid` a hybrid `up` (foreground, or the detached `up --supervise`)? */
async function isHybridUp(pid: number): Promise<boolean> {
  const argv = await commandLineOf(pid)
  return !!argv && argv.includes('up') && argv.some((a) => /hybrid|run\.js$/.test(a))
}

/** Is `pid` a `k3s server` started with this cluster's config (its data dir's config.yaml)? */
async function isK3sServerOf(pid: number, dataDir: string | undefined): Promise<boolean> {
  const argv = await commandLineOf(pid)
  if (!argv || !argv.includes('server') || !dataDir) return false
  return argv.includes(`${dataDir}/config.yaml`)
}

/** The error `down` ends with when something could not be undone: the sentence and the lists. */
export function corruptDownError(cluster: string, result: CorruptDown): HybridError {
  return new HybridError(
    'UNDO_FAILED',
    `the state of cluster ${cluster} was corrupt; down did what it could without it, but ${result.notDone.join('; ')}`,
    {details: result.changes.map((c) => `done: ${c}`)},
  )
}
