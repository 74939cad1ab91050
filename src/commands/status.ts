import {collectStatus, type StatusResult} from '../actions/status.js'
import {inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {resolveCluster} from '../state/current.js'
import {renderStatus} from '../ui/status.js'

export type {StatusResult}

export default class Status extends HybridCommand {
  static override summary =
    'Show the control plane: supervisor and k3s processes, interceptor counters, API readiness, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']
  static override flags = {
    inventory: inventoryFlag(),
  }

  async run(): Promise<StatusResult> {
    const {flags} = await this.parse(Status)
    const {cluster} = await resolveCluster(flags.inventory)
    const result = await collectStatus(cluster)
    if (!this.jsonEnabled()) this.log(renderStatus(result))
    return result
  }
}
