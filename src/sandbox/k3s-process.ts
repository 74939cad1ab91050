import {spawn} from 'node:child_process'
import {readdir, readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import type {InterceptCounters, Rule} from '../interceptor/index.js'
import type {LaunchSpec} from '../state/cluster-state.js'
import {within} from '../util/processes.js'

/**
 * A started `k3s server`, however it was launched: plain, in a session of its own, or under the ptrace
 * interceptor. Either way k3s starts children (containerd, containerd-shim, …) that may outlive it;
 * `endLeftovers` ends them, so that nothing k3s started is left when the supervisor restarts k3s or the
 * phases undo the workarounds those children still use (the fake /proc/sys tree).
 */

/** How k3s itself ended. */
export interface K3sExit {
  readonly code: number | null
  readonly signal: string | null
}

/** What `endLeftovers` found and did. */
export interface Leftovers {
  /** Processes still alive when it began, each sent SIGTERM. */
  readonly left: number
  /** Of those, still alive after the grace period, each sent SIGKILL. */
  readonly killed: number
}

export interface Running {
  readonly pid: number
  /** Settles when k3s itself exits; its children may still run. */
  readonly exited: Promise<K3sExit>
  /** Signal k3s itself; nothing once it has exited. */
  kill(signal: NodeJS.Signals): void
  /** Under the interceptor: its counters so far. */
  counters?(): InterceptCounters
  /**
   * After `exited`: SIGTERM every process k3s started that is still alive, SIGKILL what is left after
   * `graceMs`, and resolve once none is left.
   */
  endLeftovers(graceMs: number): Promise<Leftovers>
}

/** Descriptors that become k3s's stdin, stdout and stderr. */
export type Stdio = [number, number, number]

/** Start k3s: under the interceptor when the launch has rules, else plain. Throws when it cannot start. */
export async function launchK3s(launch: LaunchSpec, env: Record<string, string>, stdio: Stdio): Promise<Running> {
  return launch.rules.length > 0 ? launchIntercepted(launch, env, stdio) : launchPlain(launch, env, stdio)
}

/** How long to wait for SIGKILLed processes to vanish (uninterruptible sleep can delay it). */
const KILL_WAIT_MS = 5000
const POLL_MS = 100

/**
 * k3s without the interceptor, as the leader of a session of its own. Its leftovers are the processes
 * still in that session: containerd-shim moves to a process group of its own, but stays in the session.
 */
async function launchPlain(launch: LaunchSpec, env: Record<string, string>, stdio: Stdio): Promise<Running> {
  const child = spawn(launch.binary, [...launch.args], {env, stdio, detached: true})
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`${launch.binary}: ${error.code ?? error.message}`)),
    )
  })
  const exited = new Promise<K3sExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({code, signal}))
  })
  const pid = child.pid ?? -1
  return {
    pid,
    exited,
    kill: (signal) => {
      try {
        child.kill(signal)
      } catch {
        // already gone
      }
    },
    async endLeftovers(graceMs) {
      if (pid <= 1) return {left: 0, killed: 0}
      const left = await signalSession(pid, 'SIGTERM')
      if (left === 0 || (await waitSessionEmpty(pid, graceMs))) return {left, killed: 0}
      const killed = await signalSession(pid, 'SIGKILL')
      await waitSessionEmpty(pid, KILL_WAIT_MS)
      return {left, killed}
    },
  }
}

/** k3s under the interceptor; the native module is loaded only when there are rules to apply. */
async function launchIntercepted(launch: LaunchSpec, env: Record<string, string>, stdio: Stdio): Promise<Running> {
  const {spawnIntercepted} = await import('../interceptor/index.js')
  const child = spawnIntercepted(launch.binary, [...launch.args], {rules: launch.rules as Rule[], env, stdio})
  return {
    pid: child.pid,
    exited: child.exited.then((e) => ({code: e.code, signal: e.signal})),
    kill: (signal) => {
      try {
        child.kill(signal)
      } catch {
        // already gone
      }
    },
    counters: () => child.counters(),
    // Every descendant is traced, so the interceptor knows them all, wherever they moved their session.
    async endLeftovers(graceMs) {
      const left = child.killAll('SIGTERM')
      if (left === 0 || (await within(child.finished, graceMs))) {
        await child.finished
        return {left, killed: 0}
      }
      const killed = child.killAll('SIGKILL')
      await child.finished
      return {left, killed}
    },
  }
}

/** Live (not zombie) processes whose session id is `sid`. */
async function sessionMembers(sid: number): Promise<number[]> {
  const members: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // gone meanwhile
    }
    // After the parenthesised command name (which may itself contain ") "): state ppid pgrp session …
    const [state, , , session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(session) === sid && state !== 'Z' && state !== 'X') members.push(Number(entry))
  }
  return members
}

/**
 * Signal each live member of session `sid`; returns how many. A session id is not reused while the
 * session has members, so a member found here is one k3s started (or its descendant that kept it).
 */
async function signalSession(sid: number, signal: NodeJS.Signals): Promise<number> {
  let count = 0
  for (const pid of await sessionMembers(sid)) {
    try {
      process.kill(pid, signal)
      count++
    } catch {
      // exited since the scan
    }
  }
  return count
}

/** Wait until session `sid` has no live member, at most `timeoutMs`; true when it emptied. */
async function waitSessionEmpty(sid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if ((await sessionMembers(sid)).length === 0) return true
    if (Date.now() >= deadline) return false
    await sleep(POLL_MS)
  }
}

/** SIGTERM, then SIGKILL once `graceMs` has passed; resolves once k3s is gone, true when SIGTERM was enough. */
export async function terminate(running: Running, graceMs: number): Promise<boolean> {
  running.kill('SIGTERM')
  if (await within(running.exited, graceMs)) return true
  running.kill('SIGKILL')
  await running.exited
  return false
}
