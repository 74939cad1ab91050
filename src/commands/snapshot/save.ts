import {saveSnapshot} from '../../actions/snapshot.js'
import {inventoryFlag} from '../../cli/flags.js'
import {HybridCommand} from '../../cli/hybrid-command.js'
import {HybridError} from '../../errors.js'
import type {TakenSnapshot} from '../../snapshot/take.js'
import {resolveClusterInventory} from '../../state/current.js'
import {renderSnapshotTaken} from '../../ui/snapshots.js'

export default class SnapshotSave extends HybridCommand {
  static override summary =
    'Take an encrypted snapshot of the running control plane and store it on the snapshot workers'
  static override description =
    'The datastore (copied while k3s runs), the CAs, credentials, tokens and server config, and hybrid’s ' +
    'records, encrypted under a key derived from the cluster token, written to every worker of ' +
    'spec.controlPlane.snapshots.to and read back. Exit 3: some workers have it, others failed (named).'
  static override examples = ['<%= config.bin %> snapshot save', '<%= config.bin %> snapshot save --json']
  static override flags = {inventory: inventoryFlag()}

  async run(): Promise<TakenSnapshot> {
    const {flags} = await this.parse(SnapshotSave)
    const {inventory} = await resolveClusterInventory(flags.inventory)
    if (!inventory)
      throw new HybridError('NO_CLUSTER', 'snapshot save needs the inventory: --inventory FILE', {exitCode: 2})
    const env = this.actionEnv({})
    try {
      const taken = await saveSnapshot(env, inventory)
      env.progress.close()
      if (!this.jsonEnabled()) this.log(renderSnapshotTaken(taken))
      const failed = taken.copies.filter((c) => c.error)
      if (failed.length > 0)
        throw new HybridError(
          'PARTLY_DONE',
          `snapshot ${taken.manifest.id} is stored on ${taken.copies.length - failed.length} of ${taken.copies.length} workers (${failed.map((f) => f.worker).join(', ')} failed)`,
          {exitCode: 3},
        )
      return taken
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }
}
