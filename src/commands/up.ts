import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {dryRunFlag, inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {HybridError, UsageError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import type {Inventory} from '../inventory/model.js'
import {controlPlaneTeardown, superviseUntilStopped} from '../phases/supervise.js'
import {acquireK3sBinary} from '../phases/acquire-k3s.js'
import {applyWorkarounds} from '../phases/apply-workarounds.js'
import type {ControlPlaneContext} from '../phases/control-plane-context.js'
import {adoptState} from '../phases/adopt-state.js'
import {loadState} from '../phases/load-state.js'
import {preflight} from '../phases/preflight.js'
import {prepareState} from '../phases/prepare-state.js'
import {prepareToken} from '../phases/prepare-token.js'
import {type ChildMessage, startControlPlane} from '../phases/start-control-plane.js'
import {waitReady} from '../phases/wait-ready.js'
import {writeKubeconfig} from '../phases/write-kubeconfig.js'
import {writeServerConfigPhase} from '../phases/write-server-config.js'
import {
  createPlanContext,
  createProgress,
  handleInterrupts,
  type Phase,
  type PlanResult,
  progressMode,
  renderChanges,
  runPlan,
  summaryJson,
} from '../plan/index.js'
import type {K3sFailure} from '../sandbox/k3s-failure.js'
import {clusterPaths} from '../state/cluster-state.js'

/** What `up --json` prints (and, for a foreground `up`, the `result` event once the cluster is ready). */
export interface UpResult {
  readonly cluster: string
  /** up: brought up by this run; already-up: nothing changed; dry-run: nothing done. */
  readonly outcome: 'up' | 'already-up' | 'dry-run' | 'stopped'
  readonly kubeconfig?: string
  readonly server?: string
  readonly supervisor?: {readonly pid: number; readonly detached: boolean}
  readonly plan?: Record<string, unknown>
}

const UP_PHASES: readonly Phase<ControlPlaneContext>[] = [
  loadState,
  prepareState,
  preflight,
  acquireK3sBinary,
  prepareToken,
  applyWorkarounds,
  writeServerConfigPhase,
  startControlPlane,
  waitReady,
  writeKubeconfig,
]

/** The detached supervisor's own plan: take over what the parent `up` prepared, and start k3s. */
const SUPERVISE_PHASES: readonly Phase<ControlPlaneContext>[] = [loadState, adoptState, startControlPlane]

export default class Up extends HybridCommand {
  static override summary = 'Bring the cluster up: the k3s control plane in this sandbox, with its workarounds'
  static override description =
    'Stays in the foreground as the supervisor of k3s (like `k3s server`) until SIGINT or SIGTERM, then stops k3s and undoes the workarounds; with --detach it returns once the cluster is ready and a background supervisor keeps it running (`hybrid down` stops it).'
  static override examples = [
    '<%= config.bin %> up --inventory lab.yaml',
    '<%= config.bin %> up --inventory lab.yaml --detach',
    '<%= config.bin %> up --inventory lab.yaml --dry-run',
  ]
  static override flags = {
    inventory: inventoryFlag('the inventory file (required)'),
    'dry-run': dryRunFlag(),
    detach: Flags.boolean({
      description: 'return once ready; a background supervisor keeps the cluster running',
      default: false,
    }),
    supervise: Flags.boolean({
      hidden: true,
      description: 'internal: be the detached supervisor of a cluster `up --detach` prepared',
      default: false,
    }),
  }

  protected override get writesLogFile(): boolean {
    return true
  }

  async run(): Promise<UpResult> {
    const {flags} = await this.parse(Up)
    if (flags.supervise && (flags.detach || flags['dry-run']))
      throw new UsageError('--supervise is internal and takes no --detach or --dry-run')
    if (!flags.inventory)
      throw new UsageError('up needs the inventory: hybrid up --inventory FILE (hybrid init writes a starter)')
    const inventory = await loadInventory(resolve(flags.inventory))
    if (inventory.workers.length > 0) {
      throw new UsageError(
        `${inventory.file}: spec.workers: this version of hybrid brings up the control plane only; joining workers is not implemented yet (use workers: [])`,
      )
    }
    // A second SIGINT exits at once; k3s must not outlive this process then (under the interceptor
    // ptrace's EXITKILL sees to it, without it this does).
    const interrupts = handleInterrupts({logger: this.logger, onForceExit: () => this.killK3s()})
    try {
      if (flags.supervise) return await this.supervise(inventory, interrupts.signal)
      return await this.up(inventory, {dryRun: flags['dry-run'], detach: flags.detach}, interrupts.signal)
    } finally {
      interrupts.dispose()
    }
  }

  private current?: ControlPlaneContext

  private killK3s(): void {
    const pid = this.current?.supervisor?.local?.pid
    try {
      if (pid) process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }

  private context(
    inventory: Inventory,
    options: {dryRun?: boolean; detach?: boolean; detachedSupervisor?: boolean},
    signal: AbortSignal,
  ): ControlPlaneContext {
    const json = this.jsonEnabled()
    const mode = options.detachedSupervisor
      ? 'plain'
      : progressMode({
          json,
          logFormat: json ? 'json' : 'pretty',
          stderrIsTTY: process.stderr.isTTY === true,
          term: process.env.TERM,
        })
    const progress = createProgress({mode, logger: this.logger})
    this.current = {
      ...createPlanContext({
        logger: this.logger,
        dryRun: options.dryRun,
        signal,
        progress,
        concurrency: inventory.concurrency,
      }),
      cluster: inventory.name,
      inventory,
      paths: clusterPaths(inventory.name),
      detach: options.detach ?? false,
      detachedSupervisor: options.detachedSupervisor ?? false,
    }
    return this.current
  }

  private async up(
    inventory: Inventory,
    options: {dryRun: boolean; detach: boolean},
    signal: AbortSignal,
  ): Promise<UpResult> {
    const ctx = this.context(inventory, options, signal)
    const result = await runPlan(UP_PHASES, ctx)
    ctx.progress.close()
    if (result.status !== 'done') throw planError(result)
    const cluster = inventory.name
    if (options.dryRun) {
      if (!this.jsonEnabled()) process.stdout.write(renderChanges(result.changes, true))
      return {cluster, outcome: 'dry-run', plan: summaryJson(result)}
    }
    const server = `https://127.0.0.1:${inventory.controlPlane.apiPort}`
    if (ctx.alreadyUp) {
      this.log(`cluster ${cluster} is already up; nothing to change`)
      return {cluster, outcome: 'already-up', kubeconfig: ctx.kubeconfig, server, supervisor: ownerOf(ctx)}
    }
    const ready: UpResult = {
      cluster,
      outcome: 'up',
      kubeconfig: ctx.kubeconfig,
      server,
      supervisor: {pid: ctx.supervisor!.pid, detached: ctx.supervisor!.detached},
    }
    if (!this.jsonEnabled()) this.log(howToUse(cluster, ctx.kubeconfig!, options.detach))
    if (options.detach) {
      ctx.supervisor!.release?.()
      return ready
    }
    ctx.progress.report({event: 'result', result: ready})
    const failure = await superviseUntilStopped(ctx)
    if (failure) throw failure
    return {cluster, outcome: 'stopped'}
  }

  /** `up --supervise`: the detached child. Reports readiness to the parent over IPC, then supervises. */
  private async supervise(inventory: Inventory, signal: AbortSignal): Promise<UpResult> {
    const ctx = this.context(inventory, {detachedSupervisor: true}, signal)
    const send = (message: ChildMessage) => (process.connected ? process.send!(message) : undefined)
    const result = await runPlan(SUPERVISE_PHASES, ctx)
    if (result.status !== 'done') {
      const error = planError(result)
      send({
        type: 'failed',
        failure: {kind: 'died', sentence: error.message, code: null, signal: null, logTail: error.details},
      })
      throw error
    }
    const ready = await settled(ctx.supervisor!.ready, ctx.signal)
    if (ready === 'stop') {
      // The parent gave up waiting (interrupted, timed out): stop and undo; it finds nothing left to undo.
      await controlPlaneTeardown(ctx, {undo: true})
      return {cluster: inventory.name, outcome: 'stopped'}
    }
    if (ready !== 'ready') {
      send({type: 'failed', failure: ready})
      await controlPlaneTeardown(ctx, {undo: false}) // the parent's clean-up undoes the workarounds
      throw new HybridError(ready.sentence, 1, [...ready.logTail])
    }
    send({type: 'ready'})
    if (process.connected) process.disconnect()
    const failure = await superviseUntilStopped(ctx)
    if (failure) throw failure
    return {cluster: inventory.name, outcome: 'stopped'}
  }
}

/** How the first readiness ended: ready, k3s's failure, or a stop requested first. */
async function settled(ready: Promise<void>, signal: AbortSignal): Promise<'ready' | 'stop' | K3sFailure> {
  const stop = new Promise<'stop'>((resolve) => {
    if (signal.aborted) resolve('stop')
    signal.addEventListener('abort', () => resolve('stop'), {once: true})
  })
  return Promise.race([
    ready.then(
      (): 'ready' => 'ready',
      (failure: K3sFailure) => failure,
    ),
    stop,
  ])
}

function ownerOf(ctx: ControlPlaneContext): UpResult['supervisor'] {
  const owner = ctx.state?.supervisor
  return owner ? {pid: owner.pid, detached: owner.detached} : undefined
}

/** A failed or interrupted plan as the command's one sentence (details: k3s's last lines, clean-up failures). */
function planError(result: PlanResult): HybridError {
  const cleanup = result.cleanupFailures.map((f) => `clean-up of "${f.phase}" failed: ${f.message}`)
  if (result.status === 'interrupted') {
    return new HybridError(
      cleanup.length === 0
        ? 'interrupted; what this run had changed was undone'
        : 'interrupted; some of what this run changed could not be undone (`hybrid down` tries again)',
      1,
      cleanup,
    )
  }
  const failure = result.failure!
  return new HybridError(failure.message, result.exitCode === 0 ? 1 : result.exitCode, [...failure.details, ...cleanup])
}

function howToUse(cluster: string, kubeconfig: string, detach: boolean): string {
  const lines = [
    `cluster ${cluster} is up`,
    `  kubectl --kubeconfig ${kubeconfig} get nodes`,
    `  hybrid kubeconfig --merge    (adds context ${cluster} to ~/.kube/config)`,
    detach
      ? '  hybrid down                  (stops it and undoes the workarounds)'
      : 'supervising k3s in the foreground; Ctrl-C or `hybrid down` stops it and undoes the workarounds',
  ]
  return lines.join('\n')
}
