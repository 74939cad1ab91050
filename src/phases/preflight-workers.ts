import {forEachHost, type Phase} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import type {ClusterContext, InventoryInput, WorkerConnections} from './context.js'
import {connectAndCheck} from './join/connect.js'

/**
 * Before the control plane starts, check every worker as `hybrid preflight` does (connect with its host
 * key policy, gather facts, judge them), up to spec.concurrency at once, changing nothing on any. A
 * worker that cannot be used fails here with its sentence, and the join leaves it out; the others, and
 * the control plane, go on (the run exits 3, or 1 when no worker was usable). Its connections are kept for
 * the join (their keepalives notice one lost while the control plane starts, and the join then connects
 * again), which closes them; a run that stops before the join closes them in the clean-up.
 */
export const preflightWorkers: Phase<ClusterContext & InventoryInput, WorkerConnections> = {
  title: 'check the workers',
  shouldRun: (ctx) => ctx.inventory.workers.length > 0 || {skip: 'the inventory names no worker'},
  async run(ctx) {
    const connections = new SshConnections()
    try {
      // A worker that fails is settled as failed in the run's hosts, which the join leaves out.
      await forEachHost(ctx, ctx.inventory.workers, {
        name: (worker) => worker.name,
        steps: [
          {
            title: 'check the worker',
            run: async (worker) => {
              await connectAndCheck(connections, worker, ctx.inventory, ctx.cluster)
            },
          },
        ],
      })
    } catch (error) {
      await connections.closeAll()
      throw error
    }
    return {workerConnections: connections}
  },
  async cleanUp(ctx) {
    await ctx.workerConnections?.closeAll()
  },
}
