import type {HostHandle} from '../../plan/index.js'
import {recordRemovedNode} from '../../state/removed-nodes.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/**
 * Without the API (`down --uninstall-workers`) the Node and its node-password secret cannot be deleted
 * now, yet k3s keeps both in its datastore: the next `up` deletes them once its API is ready, before any
 * worker joins (state/removed-nodes.ts). Noted after the agent is gone, as the Node deletion would be.
 */
export const noteRemovedNode: LeaveStep = {
  title: 'note the Node for deletion',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    if (run.kube) return
    const sentence = `delete Node ${record.node} and its node-password secret at the next up (the API is not up now)`
    await run.ctx.wet(record.worker, sentence, async () => {
      await recordRemovedNode(run.cluster, record.node)
      handle.logger.debug(`Node ${record.node} noted for deletion`)
    })
  },
}
