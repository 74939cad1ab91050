import type {Phase} from '../plan/index.js'
import {explainFailure} from '../sandbox/diagnosis.js'
import {K3sFailure} from '../sandbox/k3s-failure.js'
import {abortedPromise} from '../util/abort.js'
import type {ClusterContext, InventoryInput, OwnedState, Supervised} from './context.js'

/** Wait until the supervisor says the API (and the sandbox Node, with an agent) is ready. */
export const waitReady: Phase<ClusterContext & InventoryInput & OwnedState & Supervised> = {
  title: 'wait for the control plane',
  shouldRun: (ctx) => ctx.supervisor !== undefined || {skip: 'nothing was started (dry run)'},
  async run(ctx) {
    if (!ctx.supervisor) return
    try {
      await Promise.race([ctx.supervisor.ready, abortedPromise(ctx.signal)])
    } catch (error) {
      if (ctx.signal.aborted || !(error instanceof K3sFailure)) throw error
      throw explainFailure(error, {
        workarounds: ctx.inventory.controlPlane.workarounds,
        applied: ctx.state.workarounds.map((r) => r.id),
        k3sLog: ctx.paths.k3sLog,
      })
    }
  },
}
