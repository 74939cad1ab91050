import {HybridError} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import {snapshotTargets, takeSnapshot, type TakenSnapshot} from '../snapshot/take.js'
import {readState} from '../state/cluster-state.js'
import {ownerAlive} from '../state/owner.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput} from './context.js'

/** save-snapshot gives: the snapshot taken (undefined under --dry-run). */
export interface Saved {
  readonly snapshot?: TakenSnapshot
}

/**
 * Take a snapshot of the running cluster (docs/architecture.md, "Snapshots and restore") and store it on
 * every target. The cluster must be up here: the datastore is copied while k3s runs.
 */
export const saveSnapshotPhase: Phase<ClusterContext & InventoryInput, Saved> = {
  title: 'take a snapshot',
  async run(ctx) {
    const state = await readState(ctx.cluster)
    if (!state || !(await ownerAlive(state)))
      throw new HybridError(
        'CLUSTER_NOT_UP',
        `cluster ${ctx.cluster} is not up here; a snapshot is taken of a running cluster`,
      )
    const targets = snapshotTargets(ctx.inventory).map((w) => w.name)
    const connections = new SshConnections()
    try {
      const snapshot = await ctx.wet(
        CONTROL_PLANE_HOST,
        `take a snapshot and store it on ${targets.join(', ') || 'no worker'}`,
        () => takeSnapshot(ctx.inventory, ctx.paths, connections, ctx.logger),
      )
      return {snapshot}
    } finally {
      await connections.closeAll()
    }
  },
}
