import {type PreflightResult, PreflightBlocked, preflightAction} from '../actions/preflight.js'
import {inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {redactValue} from '../log/redact.js'
import {renderPreflight} from '../ui/preflight.js'
import {renderWorkerChecks} from '../ui/worker-checks.js'

export default class Preflight extends HybridCommand {
  static override summary =
    'Probe this machine for the blockers of a k3s control plane in a sandbox, and check every worker of the inventory over SSH'
  static override description =
    'Exits 0 when every blocker found has a remedy here and every worker can be used, 1 otherwise (for ' +
    'example ptrace forbidden, or a worker whose host key is unknown), saying why per host. Workers are ' +
    'checked in parallel (spec.concurrency) and nothing is changed on them; known_hosts is written only ' +
    'under hostKeyPolicy accept-new. Without --inventory it probes the data dir of the cluster `up` last ' +
    'brought up, or else a temporary directory.'
  static override examples = [
    '<%= config.bin %> preflight',
    '<%= config.bin %> preflight --inventory lab.yaml',
    '<%= config.bin %> preflight --inventory lab.yaml --json',
  ]
  static override flags = {
    inventory: inventoryFlag('the inventory file (control plane settings, and the workers to check)'),
  }

  async run(): Promise<PreflightResult> {
    const {flags} = await this.parse(Preflight)
    const env = this.actionEnv()
    try {
      const result = await preflightAction(this.logger, flags.inventory, {
        // Under --json stdout holds the one result document, so no progress events go there.
        progress: this.jsonEnabled() ? undefined : env.progress,
        signal: env.signal,
      })
      if (!this.jsonEnabled()) this.log(render(result))
      return redactValue(result)
    } catch (error) {
      // The tables come first, so the person sees each problem in its row before the sentence.
      if (error instanceof PreflightBlocked && !this.jsonEnabled()) this.log(render(error.report))
      throw error
    } finally {
      env.interrupts.dispose()
    }
  }
}

function render(result: PreflightResult): string {
  const shown = result.workers
    ? `${renderPreflight(result)}\n\n${renderWorkerChecks(result.workers).trimEnd()}`
    : renderPreflight(result)
  return [shown, ...result.warnings.map((w) => `warning: ${w}`)].join('\n')
}
