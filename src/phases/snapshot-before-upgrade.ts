import type {Phase} from '../plan/index.js'
import {snapshotTargets} from '../snapshot/take.js'
import type {ClusterContext, InventoryInput, UpgradeInput} from './context.js'
import {saveSnapshotPhase} from './save-snapshot.js'

/**
 * Before the server moves to the new k3s, a snapshot of the control plane (docs/architecture.md,
 * "Snapshots and restore"), when the inventory names snapshot targets: the way back should the new
 * release not come up. A snapshot that cannot be stored stops the upgrade before anything changed.
 */
export const snapshotBeforeUpgrade: Phase<ClusterContext & InventoryInput & UpgradeInput, object> = {
  title: 'snapshot before upgrade when snapshots are configured',
  shouldRun: (ctx) =>
    snapshotTargets(ctx.inventory).length > 0 || {skip: 'no snapshot targets (spec.controlPlane.snapshots.to)'},
  async run(ctx) {
    await saveSnapshotPhase.run(ctx)
    return {}
  },
}
