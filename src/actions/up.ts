import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {
  type Change,
  type HostOutcome,
  Plan,
  type PlanOutput,
  type PlanResult,
  runPlan,
  summaryJson,
} from '../plan/index.js'
import {acquireK3sBinary} from '../phases/acquire-k3s.js'
import {applyCni} from '../phases/apply-cni.js'
import {forgetRemovedNodesPhase} from '../phases/forget-removed-nodes.js'
import {joinWorkers} from '../phases/join-workers.js'
import {advertiseInSandbox} from '../phases/advertise-in-sandbox.js'
import {applyWorkarounds} from '../phases/apply-workarounds.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type SupervisionInput} from '../phases/context.js'
import {loadState} from '../phases/load-state.js'
import {makeCurrent} from '../phases/make-current.js'
import {preflight} from '../phases/preflight.js'
import {preflightWorkers} from '../phases/preflight-workers.js'
import {prepareState} from '../phases/prepare-state.js'
import {prepareToken} from '../phases/prepare-token.js'
import {recordLaunch} from '../phases/record-launch.js'
import {type RestoreInput, restoreSnapshot} from '../phases/restore-snapshot.js'
import {startControlPlane} from '../phases/start-control-plane.js'
import {waitReady} from '../phases/wait-ready.js'
import {writeKubeconfig} from '../phases/write-kubeconfig.js'
import {writeServerConfigPhase} from '../phases/write-server-config.js'
import {readState} from '../state/cluster-state.js'
import {upDecision} from '../state/up-decision.js'
import {down} from './down.js'
import {RolloutStopped, runUpgrade, upgradeOf} from './upgrade.js'
import {type ActionEnv, clusterContext} from './context.js'
import {type UpSummary, upSummary} from './up-summary.js'
import {planError} from './plan-error.js'
import {lockCluster} from './run-lock.js'
import {type Running, superviseUntilStopped} from './teardown.js'

/** What `up --json` prints (and, for a foreground `up`, the `result` event once the cluster is ready). */
export interface UpResult {
  readonly cluster: string
  /** up: brought up by this run; already-up: nothing changed; dry-run: nothing done; stopped: supervised, then stopped. */
  readonly outcome: 'up' | 'already-up' | 'upgraded' | 'dry-run' | 'stopped'
  /** An upgrade's run: the k3s the cluster ran, and the one it runs now (the server; the workers' are in `workers`). */
  readonly upgrade?: {readonly from: string; readonly to: string}
  readonly kubeconfig?: string
  readonly server?: string
  readonly supervisor?: {readonly pid: number; readonly detached: boolean}
  /** Under --dry-run: the plan, with every change it would make. */
  readonly plan?: Record<string, unknown>
  /** Under --dry-run: the changes, for the human rendering (not part of the JSON result). */
  readonly changes?: readonly Change[]
  /** Each worker's outcome (joined, nothing to do, failed with its sentence); [] without workers. */
  readonly workers: readonly HostOutcome[]
  /** Once up: the k3s that runs, the Nodes, how long each stage took. */
  readonly summary?: UpSummary
}

export interface UpOptions {
  readonly inventory: Inventory
  readonly dryRun: boolean
  /** Stay in the foreground as the supervisor, or leave a detached supervisor running and return. */
  readonly supervision: 'foreground' | 'detach'
  /** A running cluster may move to an older spec.k3s.version (refused otherwise). */
  readonly allowDowngrade?: boolean
  /** Called once the cluster is ready, before a foreground `up` settles down to supervise it. */
  readonly onReady?: (result: UpResult) => void
  /** `--restore-from WORKER:ID`: restore that snapshot (the sandbox must have no cluster). */
  readonly restoreFrom?: RestoreInput['restoreFrom']
}

type UpBase = ClusterContext & InventoryInput & SupervisionInput & RestoreInput

/** Converge the control plane to the inventory: every step, from the state to the kubeconfig. */
const BRING_UP = Plan.start<UpBase>()
  .then(loadState)
  .then(prepareState)
  .then(preflight)
  .then(preflightWorkers)
  .then(acquireK3sBinary)
  .then(prepareToken)
  .then(restoreSnapshot)
  .then(applyWorkarounds)
  .then(advertiseInSandbox)
  .then(writeServerConfigPhase)
  .then(recordLaunch)
  .then(startControlPlane)
  .then(waitReady)
  .then(writeKubeconfig)
  .then(makeCurrent)
  .then(forgetRemovedNodesPhase)
  .then(applyCni)
  .then(joinWorkers)

/** The control plane already runs as the inventory says: only the workers may have something missing. */
const ALREADY_UP = Plan.start<ClusterContext & InventoryInput>()
  .then(makeCurrent)
  .then(forgetRemovedNodesPhase)
  .then(applyCni)
  .then(joinWorkers)

/**
 * `hybrid up`. A class only so that a second Ctrl-C can reach the k3s it started (`killK3s`): under the
 * interceptor ptrace's EXITKILL ends k3s with this process; without it, this does.
 */
export class UpAction {
  /** The plan's context once it runs: what a second Ctrl-C reads the k3s process from. */
  private ctx?: Partial<Running>

  constructor(private readonly env: ActionEnv) {}

  async run(options: UpOptions): Promise<UpResult> {
    const lock = await lockCluster(this.env, options.inventory.name, options.dryRun)
    try {
      return await this.locked(options, async () => {
        // A foreground `up` supervises without the lock: `down`, `workers add|remove` take it meanwhile.
        await lock?.release()
      })
    } finally {
      await lock?.release()
    }
  }

  private async locked(options: UpOptions, unlock: () => Promise<void>): Promise<UpResult> {
    const {inventory} = options
    const cluster = inventory.name
    const base = clusterContext(this.env, cluster, {dryRun: options.dryRun, concurrency: inventory.concurrency})
    const server = `https://127.0.0.1:${inventory.controlPlane.apiPort}`
    const decision = await upDecision(inventory)
    if (decision === 'restart') {
      const restarted = await this.restartForAgentToken(options)
      if (restarted) return restarted
    }
    if (decision === 'upgrade') return this.upgrade(options, base)
    if (decision === 'already-up') {
      const result = await runPlan(ALREADY_UP, {...base, inventory})
      if (result.status !== 'done') throw planError(result, '`hybrid up`')
      const workers = workersOf(result)
      if (options.dryRun)
        return {cluster, outcome: 'dry-run', plan: summaryJson(result), changes: result.changes, workers}
      const state = await readState(cluster)
      const owner = state?.supervisor
      const supervisor = owner ? {pid: owner.pid, detached: owner.detached} : undefined
      const summary = await upSummary(result, base.paths.kubeconfig, state?.launch?.binary)
      return {cluster, outcome: 'already-up', kubeconfig: base.paths.kubeconfig, server, supervisor, workers, summary}
    }
    const input: UpBase = {...base, inventory, supervision: options.supervision, restoreFrom: options.restoreFrom}
    this.ctx = input
    const result = await runPlan(BRING_UP, input)
    if (result.status !== 'done') throw planError(result, '`hybrid down`')
    const workers = workersOf(result)
    if (options.dryRun) {
      return {cluster, outcome: 'dry-run', plan: summaryJson(result), changes: result.changes, workers}
    }
    const ctx = input as PlanOutput<typeof BRING_UP>
    const supervisor = ctx.supervisor
    if (!supervisor) throw new HybridError('INTERNAL', 'the control plane is ready, but no supervisor was recorded')
    const ready: UpResult = {
      cluster,
      outcome: 'up',
      kubeconfig: ctx.paths.kubeconfig,
      server,
      supervisor: {pid: supervisor.pid, detached: supervisor.detached},
      workers,
      summary: await upSummary(result, ctx.paths.kubeconfig, ctx.launch.binary),
    }
    options.onReady?.(ready)
    if (options.supervision === 'detach') {
      supervisor.release?.()
      return ready
    }
    this.env.progress.report({event: 'result', result: ready})
    await unlock()
    const failure = await superviseUntilStopped(ctx)
    if (failure) throw failure
    return {cluster, outcome: 'stopped', workers}
  }

  /**
   * A cluster whose k3s server runs without an agent token (brought up by an older hybrid) is stopped as
   * `down` stops it (the workers keep their installs and records); the bring-up that follows starts k3s
   * with one, and the join rewrites each worker's token file and restarts its agent once. Under --dry-run:
   * the stop's changes and the restart, as a plan.
   */
  private async restartForAgentToken(options: UpOptions): Promise<UpResult | undefined> {
    const cluster = options.inventory.name
    const why = `cluster ${cluster} runs without an agent token of its own: restarting its control plane so that the workers move to one`
    this.env.logger.warn(why)
    const stopped = await down(this.env, {
      cluster,
      inventory: options.inventory,
      dryRun: options.dryRun,
      uninstallWorkers: false,
    })
    if (!options.dryRun) return undefined
    const restart = {
      phase: 'restart the control plane',
      host: CONTROL_PLANE_HOST,
      sentence: `${why}; then bring it up again`,
    }
    const changes = [...(stopped.planChanges ?? []), restart]
    return {cluster, outcome: 'dry-run', plan: {changes}, changes, workers: []}
  }

  /**
   * A running cluster whose spec.k3s changed, or whose rollout stopped at a failed worker: the server, then
   * the workers (actions/upgrade.ts). A rollout that left workers on their old k3s ends in exit 3.
   */
  private async upgrade(options: UpOptions, base: ClusterContext): Promise<UpResult> {
    const {inventory} = options
    const cluster = inventory.name
    const upgrade = await upgradeOf(inventory, options.allowDowngrade === true)
    const {result, notUpgraded} = await runUpgrade({...base, inventory, upgrade})
    const workers = workersOf(result)
    if (options.dryRun)
      return {cluster, outcome: 'dry-run', plan: summaryJson(result), changes: result.changes, workers, upgrade}
    const state = await readState(cluster)
    const owner = state?.supervisor
    const done: UpResult = {
      cluster,
      outcome: 'upgraded',
      upgrade,
      kubeconfig: base.paths.kubeconfig,
      server: `https://127.0.0.1:${inventory.controlPlane.apiPort}`,
      supervisor: owner ? {pid: owner.pid, detached: owner.detached} : undefined,
      workers,
      summary: await upSummary(result, base.paths.kubeconfig, state?.launch?.binary),
    }
    if (notUpgraded.length > 0) {
      const {changes: _changes, ...shown} = done
      throw new RolloutStopped(shown, upgrade, workers, notUpgraded)
    }
    return done
  }

  /** The second Ctrl-C: end k3s now (the process exits right after). */
  killK3s(): void {
    const pid = this.ctx?.supervisor?.local?.pid
    try {
      if (pid) process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** The workers' outcomes: every host of the run but the control plane's own. */
function workersOf(result: PlanResult): HostOutcome[] {
  return result.hosts.filter((h) => h.host !== CONTROL_PLANE_HOST)
}
