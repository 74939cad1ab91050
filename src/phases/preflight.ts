import type {Phase} from '../plan/index.js'
import {runPreflight} from '../sandbox/preflight.js'
import type {WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import type {ChosenWorkarounds, ClusterContext, InventoryInput} from './context.js'

/**
 * Probe this machine (src/sandbox/preflight.ts) and choose the workarounds `up` applies under the
 * inventory's setting.
 */
export const preflight: Phase<ClusterContext & InventoryInput, ChosenWorkarounds> = {
  title: 'preflight',
  async run(ctx) {
    const {controlPlane, network} = ctx.inventory
    const workaroundContext: WorkaroundContext = {
      dataDir: controlPlane.dataDir,
      agent: controlPlane.agent,
      networkMode: network.mode,
      workDir: ctx.paths.workDir,
      logger: ctx.logger,
    }
    const {report, findings, selected} = await runPreflight(workaroundContext, controlPlane.workarounds)
    // `hybrid preflight` exits 1 for these. `up` goes on: whether k3s really needs the missing remedy
    // (an agentless server may not need iptables) shows when it starts, and its failure names the blocker.
    for (const problem of report.problems) ctx.logger.warn(`no remedy here for ${problem}; going on without it`)
    const setting = Array.isArray(controlPlane.workarounds) ? 'listed' : controlPlane.workarounds
    ctx.logger.info(
      {setting: controlPlane.workarounds},
      `workarounds to apply (${setting}): ${selected.map((w) => w.id).join(', ') || 'none'}`,
    )
    return {findings, selected, workaroundContext}
  },
}
