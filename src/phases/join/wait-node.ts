import {lacksCni} from '../../kube/nodes.js'
import {waitWorkerNodeReady, workerNodeIdentity} from '../../kube/worker-node.js'
import type {HostHandle} from '../../plan/index.js'
import {changeWorkerRecord} from '../../state/worker-records.js'
import {type JoinStep, type JoinTarget, stepDeadlineMs} from './join-target.js'

/**
 * Wait, through the API, until the worker's Node is Ready, then mark the worker joined in its record.
 * The Node must be the worker's, not just of its name (`isWorkersNode`: hybrid's label or the worker's
 * address): one that is not fails the worker. Its labels and taints are checked too: a Node that
 * registered earlier with other ones says so. The CNI is applied before the join (docs/architecture.md,
 * "The workers' CNI"), so a Node turns Ready once its config lands; only where the cluster brings its own
 * CNI (spec.network.cni: none) is a Node NotReady for want of one expected: it is joined with a warning,
 * since that CNI can only go on once the cluster is up.
 */
export const waitNodeReady: JoinStep = {
  title: 'wait for the Node',
  deadlineMs: (t) => stepDeadlineMs(t, t.run.timeouts.nodeReadyMs),
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    if (run.ctx.dryRun) return
    const ownCni = run.inventory.network.cni === 'none'
    const node = await waitWorkerNodeReady(run.kube(), workerNodeIdentity(run.cluster, worker), {
      timeoutMs: run.timeouts.nodeReadyMs,
      signal: handle.signal,
      settled: ownCni ? lacksCni : undefined,
    })
    if (!node.ready)
      handle.logger.warn(
        {reason: node.reason},
        `Node ${worker.name} registered and stays NotReady until the cluster's own CNI is installed (spec.network.cni: none)`,
      )
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
