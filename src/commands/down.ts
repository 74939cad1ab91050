import {down, type DownResult} from '../actions/down.js'
import {dryRunFlag, inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {resolveCluster} from '../state/current.js'
import {renderChanges} from '../ui/index.js'

export type {DownResult}

export default class Down extends HybridCommand {
  static override summary = 'Stop the cluster: stop k3s and its supervisor, undo every workaround'
  static override description =
    'Works from the state file alone, so it also cleans up after a hybrid that crashed. Safe to run twice. The data dir stays (the next `up` resumes the same cluster).'
  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down --inventory lab.yaml']
  static override flags = {
    inventory: inventoryFlag(),
    'dry-run': dryRunFlag(),
  }

  async run(): Promise<DownResult> {
    const {flags} = await this.parse(Down)
    const {cluster, inventory} = await resolveCluster(flags.inventory)
    const env = this.actionEnv()
    try {
      const result = await down(env, {cluster, inventory, dryRun: flags['dry-run']})
      env.progress.close()
      const {planChanges, ...shown} = result
      if (this.jsonEnabled()) return shown
      if (result.outcome === 'dry-run') process.stdout.write(renderChanges(planChanges ?? [], true))
      else if (result.outcome === 'down') this.log(`cluster ${cluster} is down; its workarounds are undone`)
      else this.log(`cluster ${cluster} is not up; nothing to do`)
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }
}
