import {deleteNode, drainNode} from '../../kube/drain.js'
import type {HostHandle} from '../../plan/index.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/** Cordon the worker's Node, evict its pods (within the drain timeout), then delete the Node. */
export const drainAndDeleteNode: LeaveStep = {
  title: 'drain the Node',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const kube = run.kube
    if (!kube) return
    await run.ctx.wet(record.worker, `cordon and drain Node ${record.node}, then delete it`, async () => {
      const {evicted} = await drainNode(kube, record.node, {timeoutMs: run.timeouts.drainMs, signal: handle.signal})
      const existed = await deleteNode(kube, record.node)
      handle.logger.info({evicted, existed}, `Node ${record.node} ${existed ? 'deleted' : 'was already gone'}`)
    })
  },
}
