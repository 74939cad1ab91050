import type {KubeConfig} from '@kubernetes/client-node'

import type {HostHandle, PlanContext} from '../../plan/index.js'
import type {SshConnections} from '../../remote/connections.js'
import type {SshHost} from '../../remote/ssh-host.js'
import type {WorkerRecord} from '../../state/worker-records.js'

/** What the leave steps share: one per run of the leave phase (`workers remove`, `down`). */
export interface LeaveRun {
  readonly ctx: PlanContext
  readonly cluster: string
  readonly connections: SshConnections
  /** The cluster's API, when its Nodes are to be drained and deleted (`workers remove`); `down` has none. */
  readonly kube?: KubeConfig
  /** Stop the agent but keep what is installed (binary, config, service files). */
  readonly keepInstalled: boolean
  readonly timeouts: {readonly drainMs: number; readonly tunnelMs: number}
}

/** One worker leaving the cluster, known from its record alone (an inventory is not needed). */
export interface LeaveTarget {
  readonly run: LeaveRun
  readonly record: WorkerRecord
}

export interface LeaveStep {
  readonly title: string
  run(target: LeaveTarget, handle: HostHandle): Promise<void>
}

/** The worker's host over SSH (one connection per worker for the whole run). */
export function hostOf(target: LeaveTarget): Promise<SshHost> {
  return target.run.connections.host(target.record.spec)
}
