import {deleteNode, drainNode} from '../../kube/drain.js'
import type {HostHandle} from '../../plan/index.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/** Cordon the worker's Node and evict its pods (within the drain timeout), while its agent still runs. */
export const drainNodeStep: LeaveStep = {
  title: 'drain the Node',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const kube = run.kube
    if (!kube) return
    await run.ctx.wet(record.worker, `cordon and drain Node ${record.node}`, async () => {
      const {evicted} = await drainNode(kube, record.node, {
        timeoutMs: run.timeouts.drainMs,
        signal: handle.signal,
        onRefused: (message) => handle.logger.warn(message),
      })
      handle.logger.info({evicted}, `Node ${record.node} drained`)
    })
  },
}

/**
 * Delete the Node and its node-password secret, once the agent is stopped: a running agent registers
 * its Node again as soon as it is gone.
 */
export const deleteNodeStep: LeaveStep = {
  title: 'delete the Node',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const kube = run.kube
    if (!kube) return
    await run.ctx.wet(record.worker, `delete Node ${record.node} and its node-password secret`, async () => {
      const existed = await deleteNode(kube, record.node)
      handle.logger.info(`Node ${record.node} ${existed ? 'deleted' : 'was already gone'}`)
    })
  },
}
