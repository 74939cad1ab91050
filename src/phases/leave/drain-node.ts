import type {KubeConfig} from '@kubernetes/client-node'

import {deleteNode, drainNode} from '../../kube/drain.js'
import {isWorkersNode, notTheWorkersNode, readNode, workerNodeIdentity} from '../../kube/worker-node.js'
import type {HostHandle} from '../../plan/index.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/**
 * Whether the Node of the worker's name may be drained and deleted: it is the worker's (hybrid's label or
 * the worker's address), or gone. Another's (the sandbox's own, another machine's) is left alone, and the
 * worker's log says why.
 */
async function mayTouchNode(
  kube: KubeConfig,
  target: LeaveTarget,
  handle: HostHandle,
  doing: string,
): Promise<boolean> {
  const {run, record} = target
  const id = workerNodeIdentity(run.cluster, record.spec)
  const node = await readNode(kube, record.node)
  if (!node || isWorkersNode(node, id)) return true
  handle.logger.warn(`${record.worker}: ${notTheWorkersNode(node, id)}, so hybrid does not ${doing} it`)
  return false
}

/** Cordon the worker's Node and evict its pods (within the drain timeout), while its agent still runs. */
export const drainNodeStep: LeaveStep = {
  title: 'drain the Node',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const kube = run.kube
    if (!kube || !(await mayTouchNode(kube, target, handle, 'drain'))) return
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
    if (!kube || !(await mayTouchNode(kube, target, handle, 'delete'))) return
    await run.ctx.wet(record.worker, `delete Node ${record.node} and its node-password secret`, async () => {
      const existed = await deleteNode(kube, record.node)
      handle.logger.info(`Node ${record.node} ${existed ? 'deleted' : 'was already gone'}`)
    })
  },
}
