import type {Phase} from '../plan/index.js'
import type {ClusterContext, InventoryInput, UpgradeInput} from './context.js'

/**
 * The hook where an upgrade takes a snapshot of the control plane's datastore before the server moves to
 * the new k3s, when snapshots are configured. This hybrid has no snapshots yet, so the step is always
 * skipped with that reason; the snapshot goes here, before `upgrade the server`.
 */
export const snapshotBeforeUpgrade: Phase<ClusterContext & InventoryInput & UpgradeInput, object> = {
  title: 'snapshot before upgrade when snapshots are configured',
  shouldRun: () => ({skip: 'no snapshots are configured'}),
  run: () => ({}),
}
