import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {loadInventory} from '../inventory/load.js'
import type {ControlPlaneSettings, NetworkSettings} from '../inventory/model.js'
import type {WorkaroundsSetting} from '../inventory/schema.js'
import {renderTable} from '../plan/index.js'
import {type PreflightReport, runPreflight} from '../sandbox/preflight.js'
import type {WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import {clusterPaths, readState} from '../state/cluster-state.js'
import {currentCluster} from '../state/current.js'

/** What preflight probes for: from the inventory, else the cluster `up` last brought up, else defaults. */
interface Target {
  readonly ctx: WorkaroundContext
  readonly setting: WorkaroundsSetting
  /** A temp data dir made for this run (removed afterwards). */
  readonly tempDir?: string
}

export default class Preflight extends HybridCommand {
  static override summary =
    'Probe this machine for the blockers of a k3s control plane in a sandbox, and show the remedy `up` would apply for each'
  static override description =
    'Exits 0 when every blocker found has a remedy here, 1 when one has none (for example ptrace forbidden), saying why. Without --inventory it probes the data dir of the cluster `up` last brought up, or else a temporary directory.'
  static override examples = [
    '<%= config.bin %> preflight',
    '<%= config.bin %> preflight --inventory lab.yaml',
    '<%= config.bin %> preflight --json',
  ]
  static override flags = {
    inventory: inventoryFlag('the inventory file (data dir, agent, network mode, workarounds setting)'),
  }

  async run(): Promise<PreflightReport> {
    const {flags} = await this.parse(Preflight)
    const target = await preflightTarget(flags.inventory)
    let report: PreflightReport
    try {
      report = (await runPreflight({...target.ctx, logger: this.logger}, target.setting)).report
    } finally {
      if (target.tempDir) await rm(target.tempDir, {recursive: true, force: true})
    }
    if (!this.jsonEnabled()) this.log(renderPreflight(report))
    if (report.ok) return report
    if (this.jsonEnabled()) this.logJson(report)
    process.stderr.write(`hybrid: the control plane cannot come up here: ${report.problems.join('; ')}\n`)
    return this.exit(1)
  }
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

/** The human form: the environment, the aligned table, then what `up` would apply and what cannot be remedied. */
export function renderPreflight(report: PreflightReport): string {
  const setting = Array.isArray(report.setting) ? `[${report.setting.join(', ')}]` : report.setting
  const env = report.environment
  const lines = [
    `data dir ${report.dataDir} · workarounds: ${setting} · agent: ${report.agent ? 'yes' : 'no'} · network: ${report.networkMode}`,
    renderTable(
      ['', ''],
      [
        ['sandbox', env.sandbox],
        ['user', env.user],
        ['filesystem', env.filesystem],
        ['ptrace', env.ptrace],
        ['seccomp', env.seccomp],
      ],
    )
      .split('\n')
      .slice(1)
      .join('\n'),
    renderTable(
      ['ID', 'FOUND', 'ACTION', 'EVIDENCE'],
      report.rows.map((r) => [r.id, r.timedOut ? 'timeout' : r.found ? 'yes' : 'no', r.action, r.evidence]),
    ),
  ]
  const applied = report.rows.filter((r) => r.action === 'apply')
  lines.push(
    applied.length === 0
      ? 'up would apply no workaround'
      : `up would apply:\n${indent(
          renderTable(
            ['', ''],
            applied.map((r) => [r.id, r.remedy]),
          ),
        )}`,
  )
  const missing = report.rows.filter((r) => r.action === 'none-available')
  if (missing.length > 0)
    lines.push(
      `no remedy here:\n${indent(
        renderTable(
          ['', ''],
          missing.map((r) => [r.id, r.reason]),
        ),
      )}`,
    )
  return lines.join('\n').replace(/\n+$/, '')
}

function indent(table: string): string {
  return table
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => `  ${l}`)
    .join('\n')
}
