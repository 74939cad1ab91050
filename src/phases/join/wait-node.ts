import {waitNodesReady} from '../../kube/nodes.js'
import type {HostHandle} from '../../plan/index.js'
import {changeWorkerRecord} from '../../state/worker-records.js'
import {type JoinStep, type JoinTarget, stepDeadlineMs} from './join-target.js'

/**
 * Wait, through the API, until the worker's Node is Ready, then mark the worker joined in its record.
 * Its labels and taints are checked too: a Node that registered earlier with other ones says so.
 */
export const waitNodeReady: JoinStep = {
  title: 'wait for the Node',
  deadlineMs: (t) => stepDeadlineMs(t, t.run.timeouts.nodeReadyMs),
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    if (run.ctx.dryRun) return
    const [node] = await waitNodesReady(run.kube(), [worker.name], {
      timeoutMs: run.timeouts.nodeReadyMs,
      signal: handle.signal,
    })
    const missing = Object.entries(worker.labels).filter(([k, v]) => node.labels[k] !== v)
    if (missing.length > 0)
      handle.logger.warn(
        {labels: missing.map(([k, v]) => `${k}=${v}`)},
        `Node ${worker.name} is Ready but lacks labels the inventory gives it`,
      )
    const joinedAt = new Date().toISOString()
    await changeWorkerRecord(run.cluster, worker.name, (r) =>
      r ? {...r, phase: 'joined', joinedAt: r.phase === 'joined' ? (r.joinedAt ?? joinedAt) : joinedAt} : null,
    )
  },
}
