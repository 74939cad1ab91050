import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {listWorkerRecords} from '../state/worker-records.js'

import {HybridError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import type {ControlPlaneSettings, Inventory, NetworkSettings} from '../inventory/model.js'
import type {WorkaroundsSetting} from '../inventory/schema.js'
import type {Logger} from '../log/logger.js'
import type {Progress} from '../plan/index.js'
import {checkWorkers, type CheckWorkersOptions, type WorkerChecks} from '../remote/worker-check.js'
import {type PreflightReport, runPreflight} from '../sandbox/preflight.js'
import type {WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import {clusterPaths, readState} from '../state/cluster-state.js'
import {currentCluster} from '../state/current.js'

/** What `hybrid preflight` found: this machine's blockers, and with an inventory its workers. */
export interface PreflightResult extends PreflightReport {
  /** One row per worker of the inventory; null without an inventory or when it names no worker. */
  readonly workers: WorkerChecks | null
  /** What does not stop `up` but should be known: a cluster with workers and no snapshot target. */
  readonly warnings: readonly string[]
}

/**
 * A blocker with no remedy here, or a worker that cannot be used: exit 1, and under --json the whole
 * result with the error in it.
 */
export class PreflightBlocked extends HybridError {
  constructor(readonly report: PreflightResult) {
    const unusable = report.workers?.workers.filter((w) => w.problems.length > 0) ?? []
    const parts = [
      report.ok ? undefined : `the control plane cannot come up here: ${report.problems.join('; ')}`,
      unusable.length === 0
        ? undefined
        : `${unusable.length} of ${report.workers!.workers.length} workers cannot be used (${unusable.map((w) => w.name).join(', ')}), for the reasons listed`,
    ]
    super(report.ok ? 'WORKERS_NOT_READY' : 'PREFLIGHT_BLOCKED', parts.filter(Boolean).join('; and '))
    this.name = 'PreflightBlocked'
  }

  override jsonDocument(): Record<string, unknown> {
    return {...this.report, error: this.toJSON()}
  }
}

export interface PreflightOptions {
  /** Per-worker rows while the workers are checked. */
  readonly progress?: Progress
  readonly signal?: AbortSignal
}

/**
 * `hybrid preflight`: probe this machine for the control plane's blockers, as `up` would for the given
 * inventory (else the cluster `up` last brought up, else defaults in a temporary data dir), and check the
 * inventory's workers over SSH at the same time. Changes nothing (known_hosts only under accept-new).
 * Returns the result when everything can be used; throws PreflightBlocked else.
 */
export async function preflightAction(
  logger: Logger,
  inventoryFile: string | undefined,
  options: PreflightOptions = {},
): Promise<PreflightResult> {
  const target = await preflightTarget(inventoryFile)
  const checkTheWorkers = async () =>
    target.inventory?.workers.length
      ? checkWorkers(target.inventory, {
          signal: options.signal,
          onProgress: workerProgress(options.progress),
          recorded: await installedWorkers(target.inventory.name),
        })
      : null
  let report: PreflightReport
  let workers: WorkerChecks | null
  try {
    ;[report, workers] = await Promise.all([
      runPreflight({...target.ctx, logger}, target.setting).then((r) => r.report),
      checkTheWorkers(),
    ])
  } finally {
    options.progress?.close()
    if (target.tempDir) await rm(target.tempDir, {recursive: true, force: true})
  }
  const result: PreflightResult = {...report, workers, warnings: snapshotWarnings(target.inventory)}
  if (!result.ok || (result.workers && !result.workers.ok)) throw new PreflightBlocked(result)
  return result
}

/** Worker checks as progress steps of the preflight phase: live rows on a terminal, lines elsewhere. */
function workerProgress(progress: Progress | undefined): CheckWorkersOptions['onProgress'] {
  if (!progress) return undefined
  const title = {connecting: 'connect', facts: 'gather facts'} as const
  const current = new Map<string, {step: string; since: number}>()
  return (host, stage, check) => {
    const running = current.get(host)
    current.delete(host)
    const failed = stage === 'done' && check !== undefined && check.problems.length > 0
    if (running)
      progress.report({
        event: 'step',
        phase: 'preflight',
        host,
        step: running.step,
        status: failed ? 'failed' : 'done',
        elapsedMs: Date.now() - running.since,
        ...(failed ? {error: check.problems[0]} : {}),
      })
    if (stage === 'done') return
    current.set(host, {step: title[stage], since: Date.now()})
    progress.report({event: 'step', phase: 'preflight', host, step: title[stage], status: 'start'})
  }
}

/** What preflight probes for: from the inventory, else the cluster `up` last brought up, else defaults. */
interface Target {
  readonly ctx: WorkaroundContext
  readonly setting: WorkaroundsSetting
  /** The inventory, when one was given: its workers are checked. */
  readonly inventory?: Inventory
  /** A temp data dir made for this run (removed afterwards). */
  readonly tempDir?: string
}

async function preflightTarget(inventoryFile: string | undefined): Promise<Target> {
  if (inventoryFile) {
    const inventory = await loadInventory(resolve(inventoryFile))
    return {
      ctx: contextFor(inventory.controlPlane, inventory.network, clusterPaths(inventory.name).workDir),
      setting: inventory.controlPlane.workarounds,
      inventory,
    }
  }
  const cluster = await currentCluster()
  const state = cluster ? await readState(cluster) : undefined
  if (cluster && state) {
    const settings = state.settings as {controlPlane?: ControlPlaneSettings; network?: NetworkSettings}
    const controlPlane = {...settings.controlPlane, dataDir: state.dataDir} as ControlPlaneSettings
    return {
      ctx: contextFor(controlPlane, settings.network, clusterPaths(cluster).workDir),
      setting: controlPlane.workarounds ?? 'auto',
    }
  }
  const tempDir = await mkdtemp(join(tmpdir(), 'hybrid-preflight-'))
  return {
    ctx: {dataDir: tempDir, agent: true, networkMode: 'tunnel', workDir: join(tempDir, 'work')},
    setting: 'auto',
    tempDir,
  }
}

function contextFor(
  controlPlane: Partial<ControlPlaneSettings> & {dataDir: string},
  network: Partial<NetworkSettings> | undefined,
  workDir: string,
): WorkaroundContext {
  return {
    dataDir: controlPlane.dataDir,
    agent: controlPlane.agent ?? true,
    networkMode: network?.mode ?? 'tunnel',
    workDir,
  }
}

/** The workers whose agent this cluster's records say hybrid installed (they may predate the owner file). */
async function installedWorkers(cluster: string): Promise<Set<string>> {
  const records = await listWorkerRecords(cluster).catch(() => [])
  return new Set(records.filter((r) => r.installed.agent || r.installed.binary).map((r) => r.worker))
}

/**
 * Workers keep running pods when the sandbox goes; without a snapshot on them, a new sandbox cannot bring
 * back the CA and tokens their agents trust (docs/architecture.md, "Snapshots and restore").
 */
function snapshotWarnings(inventory: Inventory | undefined): string[] {
  if (!inventory || inventory.workers.length === 0 || inventory.controlPlane.snapshots) return []
  return [
    `cluster ${inventory.name} has workers but no snapshot target: when this sandbox is gone, its CA, tokens and objects go with it and the workers' agents cannot reconnect to a new one (set spec.controlPlane.snapshots.to)`,
  ]
}
