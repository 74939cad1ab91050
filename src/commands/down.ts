import {Flags} from '@oclif/core'

import {down, type DownResult} from '../actions/down.js'
import {dryRunFlag, inventoryFlag, waitFlag} from '../cli/flags.js'
import {selfCommand} from '../cli/self-command.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {resolveCluster} from '../state/current.js'
import {renderChanges} from '../ui/index.js'

export type {DownResult}

export default class Down extends HybridCommand {
  static override summary = 'Stop the cluster: stop the tunnels, k3s and its supervisor, undo every workaround'
  static override description =
    'Works from the state file alone, so it also cleans up after a hybrid that crashed. Safe to run twice. The data dir stays (the next `up` resumes the same cluster). The workers keep their agent, its files and their records, so the next `up` finds them joined; --uninstall-workers first takes every recorded worker out (agent, files, tunnel address, sshd drop-in), from the records alone.'
  static override examples = [
    '<%= config.bin %> down',
    '<%= config.bin %> down --uninstall-workers',
    '<%= config.bin %> down --inventory lab.yaml --dry-run',
  ]
  static override flags = {
    inventory: inventoryFlag(),
    'uninstall-workers': Flags.boolean({
      description: 'also leave nothing of hybrid on any recorded worker (its Node goes with the cluster)',
      default: false,
    }),
    'dry-run': dryRunFlag(),
    wait: waitFlag(),
  }

  async run(): Promise<DownResult> {
    const {flags} = await this.parse(Down)
    const {cluster, inventory} = await resolveCluster(flags.inventory)
    const env = this.actionEnv({waitSeconds: flags.wait})
    try {
      const result = await down(env, {
        cluster,
        inventory,
        dryRun: flags['dry-run'],
        uninstallWorkers: flags['uninstall-workers'],
      })
      env.progress.close()
      const {planChanges, ...shown} = result
      if (this.jsonEnabled()) return shown
      if (result.outcome === 'dry-run') process.stdout.write(renderChanges(planChanges ?? [], true))
      else if (result.outcome === 'down') this.log(`cluster ${cluster} is down; its workarounds are undone`)
      else this.log(`cluster ${cluster} is not up; nothing to do`)
      const kept = result.keptWorkers
      if (kept.length > 0)
        this.log(
          `${kept.join(', ')} ${kept.length === 1 ? 'keeps' : 'keep'} hybrid's agent, so the next \`up\` finds ${kept.length === 1 ? 'it' : 'them'} joined; \`${selfCommand()} down --uninstall-workers\` leaves nothing of hybrid there`,
        )
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }
}
