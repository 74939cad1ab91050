import {PreflightBlocked, preflightAction} from '../actions/preflight.js'
import {inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import type {PreflightReport} from '../sandbox/preflight.js'
import {renderPreflight} from '../ui/preflight.js'

export default class Preflight extends HybridCommand {
  static override summary =
    'Probe this machine for the blockers of a k3s control plane in a sandbox, and show the remedy `up` would apply for each'
  static override description =
    'Exits 0 when every blocker found has a remedy here, 1 when one has none (for example ptrace ' +
    'forbidden), saying why. Without --inventory it probes the data dir of the cluster `up` last brought ' +
    'up, or else a temporary directory.'
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
    try {
      const report = await preflightAction(this.logger, flags.inventory)
      if (!this.jsonEnabled()) this.log(renderPreflight(report))
      return report
    } catch (error) {
      // The table comes first, so the person sees the blocker in its row before the sentence.
      if (error instanceof PreflightBlocked && !this.jsonEnabled()) this.log(renderPreflight(error.report))
      throw error
    }
  }
}
