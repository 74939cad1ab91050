import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import type {KubeConfig} from '@kubernetes/client-node'
import type {Logger} from 'pino'

import type {Rule} from '../interceptor/index.js'
import {kubeConfigFromFile} from '../kube/client.js'
import {waitNodesReady} from '../kube/nodes.js'
import {pollUntil, waitApiReady} from '../kube/readiness.js'
import type {LaunchSpec} from '../state/cluster-state.js'
import {tailLines} from '../state/log-tail.js'
import {within} from '../state/processes.js'
import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * The control-plane supervisor (DESIGN.md §4): runs `k3s server` (under the interceptor when there are
 * rules), its output appended to a log file; waits for `/readyz` through the kubeconfig k3s writes, then
 * for the sandbox Node; restarts k3s with exponential backoff when it dies after having been ready, at
 * most `limit` times in `windowMs`; stops it with SIGTERM, then SIGKILL after a grace period.
 * It changes nothing else: workarounds and state belong to the phases around it.
 */

export interface RestartPolicy {
  /** Restarts allowed within `windowMs` before giving up. */
  readonly limit: number
  readonly windowMs: number
  /** First delay; doubled for each restart already in the window, capped at `maxBackoffMs`. */
  readonly backoffMs: number
  readonly maxBackoffMs: number
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {limit: 5, windowMs: 600_000, backoffMs: 1000, maxBackoffMs: 60_000}

/** The policy with overrides from HYBRID_RESTART_LIMIT, HYBRID_RESTART_WINDOW_SECONDS and HYBRID_RESTART_BACKOFF_MS. */
export function restartPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): RestartPolicy {
  const number = (name: string, fallback: number, scale = 1): number => {
    const value = Number(env[name])
    return env[name] !== undefined && Number.isFinite(value) && value >= 0 ? value * scale : fallback
  }
  return {
    limit: number('HYBRID_RESTART_LIMIT', DEFAULT_RESTART_POLICY.limit),
    windowMs: number('HYBRID_RESTART_WINDOW_SECONDS', DEFAULT_RESTART_POLICY.windowMs, 1000),
    backoffMs: number('HYBRID_RESTART_BACKOFF_MS', DEFAULT_RESTART_POLICY.backoffMs),
    maxBackoffMs: DEFAULT_RESTART_POLICY.maxBackoffMs,
  }
}

/** Interceptor counters as `hybrid status` shows them; numbers add up across restarts. */
export type Counters = Record<string, unknown>

/** What the supervisor reports as it goes; the caller keeps the state file and the user informed. */
export type SupervisorEvent =
  | {readonly type: 'started'; readonly pid: number; readonly restarts: number}
  | {readonly type: 'ready'; readonly pid: number; readonly restarts: number}
  | {readonly type: 'exited'; readonly pid: number; readonly code: number | null; readonly signal: string | null}
  | {readonly type: 'restarting'; readonly inMs: number; readonly restarts: number}

/** Why k3s ended for good: with its own last words, for a one-sentence error and its details. */
export interface K3sFailure {
  /** died: exited before becoming ready; timeout: never became ready; gave-up: the restart limit; stopped: stop() before ready. */
  readonly kind: 'died' | 'timeout' | 'gave-up' | 'stopped'
  readonly sentence: string
  readonly code: number | null
  readonly signal: string | null
  /** The last lines of k3s's log. */
  readonly logTail: readonly string[]
}

export type SupervisorOutcome = {readonly stopped: true} | {readonly failed: K3sFailure}

export interface SupervisorOptions {
  readonly launch: LaunchSpec
  /** k3s's stdout and stderr go here (appended). */
  readonly logFile: string
  /** Where interceptor counters are refreshed for `hybrid status` (JSON, 0600). */
  readonly countersFile?: string
  readonly policy?: RestartPolicy
  /** How long the first start may take to become ready. */
  readonly readyTimeoutMs?: number
  /** SIGTERM, then SIGKILL after this long. */
  readonly stopGraceMs?: number
  readonly logger: Logger
  readonly onEvent?: (event: SupervisorEvent) => void | Promise<void>
}

/** A running k3s, however it was started. */
interface Running {
  readonly pid: number
  readonly exited: Promise<{code: number | null; signal: string | null}>
  kill(signal: NodeJS.Signals): void
  counters?(): Counters
  /** After exit: whatever k3s left in its process group. */
  reap?(): void
}

const LOG_TAIL_LINES = 10
const COUNTERS_INTERVAL_MS = 2000

export class Supervisor {
  private running?: Running
  private stopping = false
  private readonly stopController = new AbortController()
  private readonly deaths: number[] = []
  private restartCount = 0
  private previousCounters: Counters = {}
  private countersTimer?: NodeJS.Timeout
  private resolveReady!: () => void
  private rejectReady!: (failure: K3sFailure) => void
  /** Settles once: the first readiness, or why k3s never got there. */
  readonly ready: Promise<void>
  private donePromise?: Promise<SupervisorOutcome>

  constructor(private readonly options: SupervisorOptions) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve
      this.rejectReady = reject
    })
    this.ready.catch(() => {}) // observed through `done` as well
  }

  get pid(): number | undefined {
    return this.running?.pid
  }

  get restarts(): number {
    return this.restartCount
  }

  /** Start k3s; `done` settles when it is stopped or has failed for good. */
  start(): Promise<SupervisorOutcome> {
    this.donePromise ??= this.loop()
    return this.donePromise
  }

  get done(): Promise<SupervisorOutcome> {
    return this.start()
  }

  /** Stop k3s (SIGTERM, SIGKILL after the grace period) and wait until it is gone. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true
    this.stopController.abort(new Error('stopping'))
    const running = this.running
    if (running) {
      running.kill('SIGTERM')
      const grace = this.options.stopGraceMs ?? 20_000
      const ended = await within(running.exited, grace)
      if (!ended) {
        this.options.logger.warn({k3sPid: running.pid}, `k3s did not stop within ${grace / 1000} s of SIGTERM; sending SIGKILL`)
        running.kill('SIGKILL')
        await running.exited
      }
    }
    if (this.donePromise) await this.donePromise
  }

  /** Counters of every k3s run so far, this one included. */
  counters(): Counters {
    const current = this.running?.counters?.() ?? {}
    // `tracees` counts what is alive now: only the current run's.
    return {...addCounters(this.previousCounters, current), tracees: current.tracees ?? 0}
  }

  private async loop(): Promise<SupervisorOutcome> {
    let everReady = false
    try {
      for (;;) {
        let running: Running
        try {
          running = await this.launch()
        } catch (error) {
          // Not started at all (not executable, ptrace refused): nothing to restart.
          return this.fail('died', {code: null, signal: null}, error)
        }
        if (this.stopping) void this.stop() // stop() came while k3s was being started
        const readiness = this.watchReadiness(running).then((result) => {
          if (result === 'ready') {
            everReady = true
            this.resolveReady()
          }
          return result
        })
        const exit = await running.exited
        running.reap?.()
        this.previousCounters = addCounters(this.previousCounters, running.counters?.() ?? {})
        this.running = undefined
        await this.writeCounters()
        await this.emit({type: 'exited', pid: running.pid, code: exit.code, signal: exit.signal})
        const result = await readiness // settles promptly: k3s's exit aborts the wait
        if (this.stopping) return this.stopped()
        if (!everReady) return this.fail(typeof result === 'object' ? 'timeout' : 'died', exit, typeof result === 'object' ? result.timeout : undefined)
        const now = Date.now()
        this.deaths.push(now)
        while (this.deaths.length > 0 && this.deaths[0] < now - this.policy.windowMs) this.deaths.shift()
        const recent = this.deaths.length
        if (recent > this.policy.limit) return this.fail('gave-up', exit)
        const delay = Math.min(this.policy.backoffMs * 2 ** (recent - 1), this.policy.maxBackoffMs)
        this.restartCount++
        this.options.logger.warn({code: exit.code, signal: exit.signal, restart: this.restartCount}, `k3s exited; restarting it in ${delay} ms`)
        await this.emit({type: 'restarting', inMs: delay, restarts: this.restartCount})
        try {
          await sleep(delay, undefined, {signal: this.stopController.signal})
        } catch {
          return this.stopped()
        }
      }
    } finally {
      if (this.countersTimer) clearInterval(this.countersTimer)
    }
  }

  private stopped(): SupervisorOutcome {
    this.rejectReady({kind: 'stopped', sentence: 'k3s server was stopped before it became ready', code: null, signal: null, logTail: []})
    return {stopped: true}
  }

  private get policy(): RestartPolicy {
    return this.options.policy ?? DEFAULT_RESTART_POLICY
  }

  /**
   * Wait for readiness of this run: the kubeconfig k3s writes, `/readyz` through it, then the sandbox
   * Node. On timeout k3s is stopped, so that the loop sees it exit. Never rejects.
   */
  private async watchReadiness(running: Running): Promise<'ready' | 'aborted' | {timeout: Error}> {
    const gone = new AbortController()
    void running.exited.then(() => gone.abort(new Error('k3s exited')))
    const signal = AbortSignal.any([gone.signal, this.stopController.signal])
    const timeoutMs = this.options.readyTimeoutMs ?? 300_000
    const {launch, logger} = this.options
    try {
      // k3s may be writing the file while it is read: a half-written one is "not yet".
      const kc = await pollUntil(`k3s writing its kubeconfig ${launch.k3sKubeconfig}`, async () => tryKubeConfig(launch.k3sKubeconfig), {timeoutMs, signal, intervalMs: 250})
      await waitApiReady(kc, {timeoutMs, signal})
      logger.info({k3sPid: running.pid}, 'the API server is ready')
      if (launch.nodeName) await waitNodesReady(kc, [launch.nodeName], {timeoutMs, signal})
    } catch (error) {
      if (signal.aborted) return 'aborted'
      logger.error(`k3s did not become ready within ${timeoutMs / 1000} s; stopping it`)
      running.kill('SIGTERM')
      const ended = await within(running.exited, this.options.stopGraceMs ?? 20_000)
      if (!ended) running.kill('SIGKILL')
      return {timeout: error instanceof Error ? error : new Error(String(error))}
    }
    await this.emit({type: 'ready', pid: running.pid, restarts: this.restartCount})
    return 'ready'
  }

  private async launch(): Promise<Running> {
    const {launch, logFile} = this.options
    // k3s rewrites its kubeconfig on every start; an old one would make the readiness wait look at stale credentials.
    await rm(launch.k3sKubeconfig, {force: true})
    const logFd = openSync(logFile, 'a', 0o600)
    const nullFd = openSync('/dev/null', 'r')
    try {
      const env = {...process.env, ...launch.env} as Record<string, string>
      this.running = launch.rules.length > 0 ? await launchIntercepted(launch, env, [nullFd, logFd, logFd]) : await launchPlain(launch, env, [nullFd, logFd, logFd])
    } finally {
      closeSync(logFd)
      closeSync(nullFd)
    }
    this.options.logger.info({k3sPid: this.running.pid, binary: launch.binary}, 'k3s server started')
    await this.emit({type: 'started', pid: this.running.pid, restarts: this.restartCount})
    if (this.running.counters && this.options.countersFile && !this.countersTimer) {
      this.countersTimer = setInterval(() => void this.writeCounters(), COUNTERS_INTERVAL_MS)
      this.countersTimer.unref()
    }
    return this.running
  }

  private async writeCounters(): Promise<void> {
    if (!this.options.countersFile || this.options.launch.rules.length === 0) return // no interceptor, no counters
    const document = {updatedAt: new Date().toISOString(), k3sPid: this.running?.pid ?? null, restarts: this.restartCount, counters: this.counters()}
    try {
      await writeFileAtomic(this.options.countersFile, `${JSON.stringify(document)}\n`, 0o600)
    } catch (error) {
      this.options.logger.debug({err: error}, 'could not write interceptor counters')
    }
  }

  private async fail(kind: K3sFailure['kind'], exit: {code: number | null; signal: string | null}, cause?: unknown): Promise<SupervisorOutcome> {
    const logTail = await tailLines(this.options.logFile, LOG_TAIL_LINES)
    const how = exit.signal ? `was killed by ${exit.signal}` : exit.code === null ? 'could not be started' : `exited with code ${exit.code}`
    const minutes = Math.round(this.policy.windowMs / 60_000)
    const sentence =
      kind === 'gave-up'
        ? `k3s server died ${this.policy.limit + 1} times within ${minutes} minute${minutes === 1 ? '' : 's'} (last time it ${how}); hybrid stopped restarting it`
        : kind === 'timeout'
          ? `k3s server did not become ready: ${cause instanceof Error ? cause.message : 'timed out'}`
          : exit.code === null && exit.signal === null && cause instanceof Error
            ? `k3s server could not be started: ${cause.message.replace(/\.$/, '')}`
            : `k3s server ${how} before becoming ready`
    const failure: K3sFailure = {kind, sentence, code: exit.code, signal: exit.signal, logTail}
    this.rejectReady(failure)
    return {failed: failure}
  }

  private async emit(event: SupervisorEvent): Promise<void> {
    try {
      await this.options.onEvent?.(event)
    } catch (error) {
      this.options.logger.warn({err: error}, `could not record supervisor event ${event.type}`)
    }
  }
}

/** k3s without the interceptor, in its own process group so that what it leaves behind can be reaped. */
async function launchPlain(launch: LaunchSpec, env: Record<string, string>, stdio: [number, number, number]): Promise<Running> {
  const child = spawn(launch.binary, [...launch.args], {env, stdio, detached: true})
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`${launch.binary}: ${error.code ?? error.message}`)))
  })
  const exited = new Promise<{code: number | null; signal: string | null}>((resolve) => {
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
    reap: () => {
      try {
        if (pid > 0) process.kill(-pid, 'SIGKILL')
      } catch {
        // nothing left in the group
      }
    },
  }
}

/** k3s under the interceptor; the native module is loaded only when there are rules to apply. */
async function launchIntercepted(launch: LaunchSpec, env: Record<string, string>, stdio: [number, number, number]): Promise<Running> {
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
    counters: () => child.counters() as unknown as Counters,
  }
}

/** Numbers add; nested objects (rewrites by path) add key by key; anything else: the newer value. */
export function addCounters(a: Counters, b: Counters): Counters {
  const sum: Counters = {...a}
  for (const [key, value] of Object.entries(b)) {
    const prev = sum[key]
    if (typeof value === 'number' && typeof prev === 'number') sum[key] = prev + value
    else if (value && typeof value === 'object' && prev && typeof prev === 'object' && !Array.isArray(value)) sum[key] = addCounters(prev as Counters, value as Counters)
    else sum[key] = value
  }
  return sum
}

function tryKubeConfig(file: string): KubeConfig | undefined {
  try {
    return kubeConfigFromFile(file)
  } catch {
    return undefined
  }
}
