import {Args} from '@oclif/core'

import {throwIfHostsFailed} from '../../actions/partly-done.js'
import {addWorkers} from '../../actions/workers.js'
import {dryRunFlag, inventoryFlag, waitFlag} from '../../cli/flags.js'
import {HybridCommand} from '../../cli/hybrid-command.js'
import {UsageError} from '../../errors.js'
import {summaryJson} from '../../plan/index.js'
import {resolveClusterInventory} from '../../state/current.js'
import {renderChanges, renderHostTable} from '../../ui/index.js'

export default class WorkersAdd extends HybridCommand {
  static override summary = 'Join workers of the inventory to the running cluster'
  static override description =
    'Each worker named must be in spec.workers. Workers are joined in parallel (spec.concurrency), each ' +
    'safe to repeat: one already joined has nothing to do. Exit 3 when some joined and some failed.'
  static override strict = false
  static override args = {names: Args.string({description: 'worker names (spec.workers[].name)', required: true})}
  static override examples = ['<%= config.bin %> workers add w4 w5', '<%= config.bin %> workers add w4 --dry-run']
  static override flags = {
    inventory: inventoryFlag('the inventory file (default: the one the current cluster was brought up with)'),
    'dry-run': dryRunFlag(),
    wait: waitFlag(),
  }

  async run(): Promise<Record<string, unknown>> {
    const {argv, flags} = await this.parse(WorkersAdd)
    const {inventory} = await resolveClusterInventory(flags.inventory)
    if (!inventory) throw new UsageError('workers add needs the inventory that names the workers: --inventory FILE')
    const env = this.actionEnv({waitSeconds: flags.wait})
    try {
      const names = argv as string[]
      const result = await addWorkers(env, {inventory, names, dryRun: flags['dry-run']})
      env.progress.close()
      const shown = summaryJson(result)
      if (!this.jsonEnabled()) {
        if (flags['dry-run']) process.stdout.write(renderChanges(result.changes, true))
        else this.log(renderHostTable(result.hosts))
      }
      throwIfHostsFailed(result.hosts, shown, '`hybrid workers add`')
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }
}
