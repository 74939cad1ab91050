import {closeSync, openSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Logger} from 'pino'

import {keepRotated} from '../log/rotating-file.js'
import type {LaunchSpec} from '../state/cluster-state.js'
import type {InterceptCounters} from '../interceptor/index.js'
import {addCounters, NO_COUNTERS, runningTotals, writeCountersFile} from './interceptor-counters.js'
import {type K3sFailure, k3sFailure, stoppedBeforeReady} from './k3s-failure.js'
import {type K3sExit, launchK3s, type Running, terminate} from './k3s-process.js'
import {waitK3sReady} from './k3s-readiness.js'
import {DEFAULT_RESTART_POLICY, RestartBudget, type RestartPolicy} from './restart-policy.js'

/**
 * The control-plane supervisor (docs/architecture.md, "The supervisor"): runs `k3s server` (under the interceptor when there are
 * rules), its output appended to a log file; waits for `/readyz` through the kubeconfig k3s writes, then
 * for the sandbox Node; restarts k3s with backoff when it dies after having been ready (restart-policy.ts);
 * stops it with SIGTERM, then SIGKILL after a grace period. Each time k3s exits, whatever it started is
 * ended too before anything else happens, so a restart or the phases' undo never races its children.
 * It changes nothing else: workarounds and state belong to the phases around it.
 */

/** What the supervisor reports as it goes; the caller keeps the state file and the user informed. */
export type SupervisorEvent =
  | {readonly type: 'started'; readonly pid: number; readonly restarts: number}
  | {readonly type: 'ready'; readonly pid: number; readonly restarts: number}
  /** k3s exited, and nothing it started is left. */
  | {readonly type: 'exited'; readonly pid: number; readonly code: number | null; readonly signal: string | null}
  | {readonly type: 'restarting'; readonly inMs: number; readonly restarts: number}

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
  /** SIGTERM, then SIGKILL after this long: for k3s, and again for what it left behind. */
  readonly stopGraceMs?: number
  readonly logger: Logger
  readonly onEvent?: (event: SupervisorEvent) => void | Promise<void>
}

const COUNTERS_INTERVAL_MS = 2000
/** How often k3s.log's size is checked for rotation (rotating-file.ts, `rotateByCopy`). */
const LOG_CHECK_INTERVAL_MS = 5000

export class Supervisor {
  private running?: Running
  private stopping = false
  /** How k3s starts next: the options' launch, until `relaunch` gives another (an upgrade's binary). */
  private launchSpec: LaunchSpec
  /** Set by `relaunch`: the k3s that exits next is restarted at once, outside the restart budget. */
  private relaunching = false
  private readonly stopController = new AbortController()
  private readonly budget: RestartBudget
  private restartCount = 0
  private previousCounters: InterceptCounters = NO_COUNTERS
  private countersTimer?: NodeJS.Timeout
  private logTimer?: NodeJS.Timeout
  private resolveReady!: () => void
  private rejectReady!: (failure: K3sFailure) => void
  /** Settles once: the first readiness, or why k3s never got there. */
  readonly ready: Promise<void>
  private donePromise?: Promise<SupervisorOutcome>

  constructor(private readonly options: SupervisorOptions) {
    this.budget = new RestartBudget(options.policy ?? DEFAULT_RESTART_POLICY)
    this.launchSpec = options.launch
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

  /**
   * Stop k3s (SIGTERM, SIGKILL after the grace period) and wait until it and everything it started are
   * gone (the loop ends the leftovers before `done` settles). Safe to call twice.
   */
  async stop(): Promise<void> {
    this.stopping = true
    this.stopController.abort(new Error('stopping'))
    const running = this.running
    if (running && !(await terminate(running, this.graceMs)))
      this.options.logger.warn(
        {k3sPid: running.pid},
        `k3s did not stop within ${this.graceMs / 1000} s of SIGTERM, so it was sent SIGKILL`,
      )
    if (this.donePromise) await this.donePromise
  }

  /** How k3s is started now (the last `relaunch`'s, else the options'). */
  get launch(): LaunchSpec {
    return this.launchSpec
  }

  /**
   * Restart k3s as `launch` says (an upgrade: another binary, the same data dir and config): SIGTERM (SIGKILL
   * after the grace period) to the running one, which the loop then starts again at once, not as a death
   * (no backoff, no restart budget), and watches for readiness as every run. Resolves once the old one is gone.
   */
  async relaunch(launch: LaunchSpec): Promise<void> {
    if (this.stopping) return
    this.launchSpec = launch
    this.relaunching = true
    const running = this.running
    if (!running) return // between runs: the next start takes the new launch
    await terminate(running, this.graceMs)
  }

  /** Counters of every k3s run so far, this one included. */
  counters(): InterceptCounters {
    return runningTotals(this.previousCounters, this.running?.counters?.() ?? NO_COUNTERS)
  }

  private get policy(): RestartPolicy {
    return this.budget.policy
  }

  private get graceMs(): number {
    return this.options.stopGraceMs ?? 20_000
  }

  private async loop(): Promise<SupervisorOutcome> {
    let everReady = false
    try {
      for (;;) {
        let running: Running
        try {
          running = await this.startK3s()
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
        const exit = await this.ended(running)
        const result = await readiness // settles promptly: k3s's exit aborts the wait
        if (this.stopping) return this.stopped()
        if (this.relaunching) {
          this.relaunching = false
          this.restartCount++
          this.options.logger.info(
            {binary: this.launchSpec.binary, restart: this.restartCount},
            'k3s stopped to start on another binary; starting it now',
          )
          await this.emit({type: 'restarting', inMs: 0, restarts: this.restartCount})
          continue
        }
        if (!everReady)
          return this.fail(
            typeof result === 'object' ? 'timeout' : 'died',
            exit,
            typeof result === 'object' ? result.timeout : undefined,
          )
        const decision = this.budget.afterDeath(Date.now())
        if ('giveUp' in decision) return this.fail('gave-up', exit)
        const delay = decision.restartInMs
        this.restartCount++
        this.options.logger.warn(
          {code: exit.code, signal: exit.signal, restart: this.restartCount},
          `k3s exited; restarting it in ${delay} ms`,
        )
        await this.emit({type: 'restarting', inMs: delay, restarts: this.restartCount})
        try {
          await sleep(delay, undefined, {signal: this.stopController.signal})
        } catch {
          return this.stopped()
        }
      }
    } finally {
      if (this.countersTimer) clearInterval(this.countersTimer)
      if (this.logTimer) clearInterval(this.logTimer)
    }
  }

  /** Wait for k3s to exit, end what it left behind, then close the run: counters, the `exited` event. */
  private async ended(running: Running): Promise<K3sExit> {
    const exit = await running.exited
    const {left, killed} = await running.endLeftovers(this.graceMs)
    if (left > 0) {
      const how = killed > 0 ? `; ${killed} ignored SIGTERM for ${this.graceMs / 1000} s and got SIGKILL` : ''
      this.options.logger.warn(
        {k3sPid: running.pid, left, killed},
        `k3s left ${left} process${left === 1 ? '' : 'es'} running when it exited; ended them${how}`,
      )
    }
    this.previousCounters = addCounters(this.previousCounters, running.counters?.() ?? NO_COUNTERS)
    this.running = undefined
    await this.writeCounters()
    await this.emit({type: 'exited', pid: running.pid, code: exit.code, signal: exit.signal})
    return exit
  }

  private stopped(): SupervisorOutcome {
    this.rejectReady(stoppedBeforeReady())
    return {stopped: true}
  }

  /** Wait for readiness of this run (k3s-readiness.ts), and say so. Never rejects. */
  private async watchReadiness(running: Running): Promise<'ready' | 'aborted' | {timeout: Error}> {
    const result = await waitK3sReady(this.launchSpec, running, {
      timeoutMs: this.options.readyTimeoutMs ?? 300_000,
      signal: this.stopController.signal,
      graceMs: this.graceMs,
      logger: this.options.logger,
    })
    if (result === 'ready') await this.emit({type: 'ready', pid: running.pid, restarts: this.restartCount})
    return result
  }

  private async startK3s(): Promise<Running> {
    const {logFile} = this.options
    const launch = this.launchSpec
    // k3s rewrites its kubeconfig on every start; an old one would make the readiness wait look at stale credentials.
    await rm(launch.k3sKubeconfig, {force: true})
    const logFd = openSync(logFile, 'a', 0o600)
    const nullFd = openSync('/dev/null', 'r')
    try {
      this.running = await launchK3s(launch, {...process.env, ...launch.env} as Record<string, string>, [
        nullFd,
        logFd,
        logFd,
      ])
    } finally {
      closeSync(logFd)
      closeSync(nullFd)
    }
    this.options.logger.info({k3sPid: this.running.pid, binary: launch.binary}, 'k3s server started')
    await this.emit({type: 'started', pid: this.running.pid, restarts: this.restartCount})
    this.logTimer ??= keepRotated(logFile, LOG_CHECK_INTERVAL_MS, this.options.logger)
    if (this.running.counters && this.options.countersFile && !this.countersTimer) {
      this.countersTimer = setInterval(() => void this.writeCounters(), COUNTERS_INTERVAL_MS)
      this.countersTimer.unref()
    }
    return this.running
  }

  private async writeCounters(): Promise<void> {
    if (!this.options.countersFile || this.launchSpec.rules.length === 0) return // no interceptor, no counters
    await writeCountersFile(
      this.options.countersFile,
      {k3sPid: this.running?.pid ?? null, restarts: this.restartCount, counters: this.counters()},
      this.options.logger,
    )
  }

  private async fail(
    kind: Exclude<K3sFailure['kind'], 'stopped'>,
    exit: K3sExit,
    cause?: unknown,
  ): Promise<SupervisorOutcome> {
    const failure = await k3sFailure(kind, exit, this.policy, this.options.logFile, cause)
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
