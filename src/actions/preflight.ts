import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {HybridError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import type {ControlPlaneSettings, NetworkSettings} from '../inventory/model.js'
import type {WorkaroundsSetting} from '../inventory/schema.js'
import type {Logger} from '../log/logger.js'
import {type PreflightReport, runPreflight} from '../sandbox/preflight.js'
import type {WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import {clusterPaths, readState} from '../state/cluster-state.js'
import {currentCluster} from '../state/current.js'

/** A blocker with no remedy here: exit 1, and under --json the whole report with the error in it. */
export class PreflightBlocked extends HybridError {
  constructor(readonly report: PreflightReport) {
    super('PREFLIGHT_BLOCKED', `the control plane cannot come up here: ${report.problems.join('; ')}`)
    this.name = 'PreflightBlocked'
  }

  override jsonDocument(): Record<string, unknown> {
    return {...this.report, error: this.toJSON()}
  }
}

/**
 * `hybrid preflight`: probe this machine for the control plane's blockers, as `up` would for the given
 * inventory (else the cluster `up` last brought up, else defaults in a temporary data dir). Changes
 * nothing. Returns the report when every blocker found has a remedy here; throws PreflightBlocked else.
 */
export async function preflightAction(logger: Logger, inventoryFile: string | undefined): Promise<PreflightReport> {
  const target = await preflightTarget(inventoryFile)
  let report: PreflightReport
  try {
    report = (await runPreflight({...target.ctx, logger}, target.setting)).report
  } finally {
    if (target.tempDir) await rm(target.tempDir, {recursive: true, force: true})
  }
  if (!report.ok) throw new PreflightBlocked(report)
  return report
}

/** What preflight probes for: from the inventory, else the cluster `up` last brought up, else defaults. */
interface Target {
  readonly ctx: WorkaroundContext
  readonly setting: WorkaroundsSetting
  /** A temp data dir made for this run (removed afterwards). */
  readonly tempDir?: string
}

async function preflightTarget(inventoryFile: string | undefined): Promise<Target> {
  if (inventoryFile) {
    const inventory = await loadInventory(resolve(inventoryFile))
    return {
      ctx: contextFor(inventory.controlPlane, inventory.network, clusterPaths(inventory.name).workDir),
      setting: inventory.controlPlane.workarounds,
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
