import type {Phase} from '../plan/index.js'
import {runPreflight} from '../sandbox/preflight.js'
import type {WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import type {ControlPlaneContext} from './control-plane-context.js'

/**
 * Probe this machine (src/sandbox/preflight.ts) and choose the workarounds `up` applies under the
 * inventory's setting.
 */
export const preflight: Phase<ControlPlaneContext> = {
  title: 'preflight',
  shouldRun: (ctx) => !ctx.alreadyUp,
  async run(ctx) {
    const {controlPlane, network} = ctx.inventory!
    const wctx: WorkaroundContext = {
      dataDir: controlPlane.dataDir,
      agent: controlPlane.agent,
      networkMode: network.mode,
      workDir: ctx.paths.workDir,
      logger: ctx.logger,
    }
    const {report, findings, selected} = await runPreflight(wctx, controlPlane.workarounds)
    // `hybrid preflight` exits 1 for these. `up` goes on: whether k3s really needs the missing remedy
    // (an agentless server may not need iptables) shows when it starts, and its failure names the blocker.
    for (const problem of report.problems) ctx.logger.warn(`no remedy here for ${problem}; trying anyway`)
    ctx.workaroundContext = wctx
    ctx.findings = findings
    ctx.selected = selected
    const found = report.rows.filter((r) => r.found && r.action !== 'skip').map((r) => r.id)
    ctx.logger.info(
      {found, applying: selected.map((w) => w.id), setting: controlPlane.workarounds},
      `workarounds to apply: ${selected.map((w) => w.id).join(', ') || 'none'}`,
    )
  },
}
