import {listSnapshots, type SnapshotListResult} from '../../actions/snapshot.js'
import {inventoryFlag} from '../../cli/flags.js'
import {HybridCommand} from '../../cli/hybrid-command.js'
import {HybridError} from '../../errors.js'
import {resolveClusterInventory} from '../../state/current.js'
import {renderSnapshotList} from '../../ui/snapshots.js'

export default class SnapshotList extends HybridCommand {
  static override summary = 'List the snapshots of the cluster kept on its workers, newest first'
  static override description =
    'Asks the workers of spec.controlPlane.snapshots.to (every worker when none are named). Each row is ' +
    'WORKER:ID, what `hybrid up --restore-from` takes. Reads only; works before the cluster is up.'
  static override examples = [
    '<%= config.bin %> snapshot list --inventory lab.yaml',
    '<%= config.bin %> snapshot list --json',
  ]
  static override flags = {inventory: inventoryFlag()}

  async run(): Promise<SnapshotListResult> {
    const {flags} = await this.parse(SnapshotList)
    const {inventory} = await resolveClusterInventory(flags.inventory)
    if (!inventory)
      throw new HybridError('NO_CLUSTER', 'snapshot list needs the inventory: --inventory FILE', {exitCode: 2})
    const result = await listSnapshots(inventory)
    if (!this.jsonEnabled()) this.log(renderSnapshotList(result))
    return result
  }
}
