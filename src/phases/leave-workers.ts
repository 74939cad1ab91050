import {kubeConfigFromFile} from '../kube/client.js'
import {forEachHost, type Phase} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import {listWorkerRecords, type WorkerRecord} from '../state/worker-records.js'
import type {ClusterContext} from './context.js'
import {closeTunnel} from './leave/close-tunnel.js'
import {deleteNodeStep, drainNodeStep} from './leave/drain-node.js'
import {forgetWorker} from './leave/forget-worker.js'
import type {LeaveRun, LeaveStep, LeaveTarget} from './leave/leave-target.js'
import {noteRemovedNode} from './leave/note-removed-node.js'
import {removeAddress} from './leave/remove-address.js'
import {revertSshd} from './leave/revert-sshd.js'
import {uninstallAgentStep} from './leave/uninstall-agent.js'

/** The steps of taking one worker out, in order; each undoes one recorded thing and forgets it. */
export const LEAVE_STEPS: readonly LeaveStep[] = [
  drainNodeStep,
  uninstallAgentStep,
  deleteNodeStep,
  noteRemovedNode,
  closeTunnel,
  removeAddress,
  revertSshd,
  forgetWorker,
]

const THROUGH_THE_API: readonly LeaveStep[] = [drainNodeStep, deleteNodeStep]

/** Which workers leave, and how (`workers remove` names them; `down` takes every recorded one). */
export interface LeaveSelection {
  /** Names to remove; undefined: every worker with a record. */
  readonly leaveOnly?: readonly string[]
  /** Drain and delete the Nodes through the API (`workers remove`); `down` does not, the cluster goes. */
  readonly drainNodes: boolean
  readonly keepInstalled?: boolean
  readonly drainTimeoutMs?: number
}

/** leave-workers gives: the workers that left (their records are gone). */
export interface WorkersLeft {
  readonly left: readonly string[]
}

/**
 * Undo on each worker what its record says hybrid installed, from the record alone (no inventory is
 * needed: `down` after a crash works the same): drain the Node, stop and uninstall the agent, delete the
 * Node (after the agent, which would register it again), close the tunnel, remove
 * the advertised address and the sshd drop-in, forget the worker. Up to spec.concurrency at once; a
 * worker that cannot be reached keeps its record, so a later run resumes it.
 */
export const leaveWorkers: Phase<ClusterContext & LeaveSelection, WorkersLeft> = {
  title: 'remove the workers',
  async shouldRun(ctx) {
    return (await chosen(ctx)).length > 0 || {skip: 'no worker is recorded'}
  },
  async run(ctx) {
    const connections = new SshConnections()
    try {
      const run: LeaveRun = {
        ctx,
        cluster: ctx.cluster,
        connections,
        kube: ctx.drainNodes ? kubeConfigFromFile(ctx.paths.kubeconfig) : undefined,
        keepInstalled: ctx.keepInstalled ?? false,
        timeouts: {drainMs: ctx.drainTimeoutMs ?? 120_000, tunnelMs: 15_000},
      }
      const targets = (await chosen(ctx)).map((record): LeaveTarget => ({run, record}))
      const done = await forEachHost(ctx, targets, {
        name: (t) => t.record.worker,
        // Without the API (`down`: the cluster goes too) there is no Node to drain or delete now: the next
        // `up` deletes it (noteRemovedNode).
        steps: LEAVE_STEPS.filter((step) =>
          run.kube ? step !== noteRemovedNode : !THROUGH_THE_API.includes(step),
        ).map((step) => ({
          title: step.title,
          run: (t: LeaveTarget, h) => step.run(t, h),
        })),
      })
      return {left: done.map((t) => t.record.worker)}
    } finally {
      await connections.closeAll()
    }
  },
}

async function chosen(ctx: ClusterContext & LeaveSelection): Promise<WorkerRecord[]> {
  const records = await listWorkerRecords(ctx.cluster)
  const only = ctx.leaveOnly
  return only ? records.filter((r) => only.includes(r.worker)) : records
}
