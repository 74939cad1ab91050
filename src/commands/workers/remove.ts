import {Args, Flags} from '@oclif/core'

import {throwIfHostsFailed} from '../../actions/partly-done.js'
import {removeWorkers} from '../../actions/workers.js'
import {dryRunFlag, inventoryFlag, waitFlag} from '../../cli/flags.js'
import {HybridCommand} from '../../cli/hybrid-command.js'
import {summaryJson} from '../../plan/index.js'
import {resolveCluster} from '../../state/current.js'
import {renderChanges, renderHostTable} from '../../ui/index.js'

export default class WorkersRemove extends HybridCommand {
  static override summary = 'Take workers out of the cluster and undo what hybrid installed on them'
  static override description =
    'Cordons and drains each Node (pods evicted as PodDisruptionBudgets allow, DaemonSets left), deletes it and its node-password secret, ' +
    'stops and uninstalls the k3s agent, closes the API tunnel and removes the advertised address and the ' +
    'sshd drop-in, from what hybrid recorded for the worker (so it works after a crash, and without the ' +
    'inventory). With --keep-installed the agent is stopped but its binary, config and service stay.'
  static override strict = false
  static override args = {names: Args.string({description: 'worker names', required: true})}
  static override examples = [
    '<%= config.bin %> workers remove w2',
    '<%= config.bin %> workers remove w2 w3 --drain-timeout 300',
    '<%= config.bin %> workers remove w2 --keep-installed',
  ]
  static override flags = {
    inventory: inventoryFlag(),
    'dry-run': dryRunFlag(),
    wait: waitFlag(),
    'keep-installed': Flags.boolean({
      description: 'stop the agent but keep k3s installed on the worker',
      default: false,
    }),
    'drain-timeout': Flags.integer({
      description:
        'seconds the drain may take: evictions a PodDisruptionBudget refuses are retried every 5 s until then, and the pods must be gone',
      default: 120,
      min: 1,
    }),
  }

  async run(): Promise<Record<string, unknown>> {
    const {argv, flags} = await this.parse(WorkersRemove)
    const {cluster, inventory} = await resolveCluster(flags.inventory)
    const env = this.actionEnv({waitSeconds: flags.wait})
    try {
      const result = await removeWorkers(env, {
        cluster,
        names: argv as string[],
        dryRun: flags['dry-run'],
        keepInstalled: flags['keep-installed'],
        drainTimeoutMs: flags['drain-timeout'] * 1000,
        concurrency: inventory?.concurrency,
      })
      env.progress.close()
      const shown = summaryJson(result)
      if (!this.jsonEnabled()) {
        if (flags['dry-run']) process.stdout.write(renderChanges(result.changes, true))
        else this.log(renderHostTable(result.hosts))
      }
      throwIfHostsFailed(result.hosts, shown, '`hybrid workers remove`')
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }
}
