import {listWorkers, type WorkersListResult} from '../../actions/workers.js'
import {inventoryFlag} from '../../cli/flags.js'
import {HybridCommand} from '../../cli/hybrid-command.js'
import {resolveClusterInventory} from '../../state/current.js'
import {renderWorkers} from '../../ui/workers.js'

export default class WorkersList extends HybridCommand {
  static override summary = 'List the workers: the inventory, what hybrid joined, and the cluster side by side'
  static override description =
    'STATUS is joined (its Node is Ready), not-ready, joining or removing (a run stopped half way; running it ' +
    'again resumes), missing (in the inventory, not joined) or unknown (a Node neither the inventory nor ' +
    'hybrid knows). TUNNEL is the API tunnel the supervisor keeps to the worker (tunnel mode).'
  static override examples = ['<%= config.bin %> workers list', '<%= config.bin %> workers list --json']
  static override flags = {
    inventory: inventoryFlag(),
  }

  async run(): Promise<WorkersListResult> {
    const {flags} = await this.parse(WorkersList)
    const {cluster, inventory} = await resolveClusterInventory(flags.inventory)
    const result = await listWorkers(cluster, inventory)
    if (!this.jsonEnabled()) this.log(renderWorkers(result))
    return result
  }
}
