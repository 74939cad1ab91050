import type {KubeConfig} from '@kubernetes/client-node'

import type {AcquiredBinary} from '../../k3s/acquire.js'
import type {Inventory, WorkerSpec} from '../../inventory/model.js'
import type {HostHandle, PlanContext} from '../../plan/index.js'
import type {SshConnections} from '../../remote/connections.js'
import {remoteLimits} from '../../remote/limits.js'
import type {HostFacts, K3sArch} from '../../remote/facts.js'
import type {SshHost} from '../../remote/ssh-host.js'
import type {TunnelStatus} from '../../state/tunnel-status.js'
import type {K3sDistribution} from './distribute-k3s.js'

/**
 * What the join steps share (docs/architecture.md, "Workers"): one per run of the join phase, built
 * before the first worker starts. Every step reads it and writes nothing in it.
 */
export interface JoinRun {
  readonly ctx: PlanContext
  readonly cluster: string
  readonly inventory: Inventory
  readonly connections: SshConnections
  /** The URL the agents use: https://<advertiseAddress>:<apiPort> (through the tunnel in tunnel mode). */
  readonly server: string
  /**
   * The join token (K10<CA hash>::server:<secret>): a registered secret, never logged. Undefined only
   * under --dry-run before the control plane ever ran (nothing to check against, nothing to compare).
   */
  readonly token: string | undefined
  /** The cluster's API as this process reaches it (the user's kubeconfig for the cluster), read when first asked. */
  kube(): KubeConfig
  /** The k3s binary for an architecture, fetched once per architecture (undefined under --dry-run). */
  binary(arch: K3sArch): Promise<AcquiredBinary | undefined>
  /** A binary's bytes, read from disk once for every worker it is uploaded to. */
  binaryBytes(binary: AcquiredBinary): Promise<Buffer>
  /** How the k3s binary reaches each worker (spec.k3s.distribute), and the peer servers of this join. */
  readonly distribution: K3sDistribution
  /** The supervisor's view of a worker's tunnel (tunnels.json), undefined before it opened one. */
  tunnelStatus(worker: string): Promise<TunnelStatus | undefined>
  /** How long a worker may take to become Ready, and the tunnel to come up. */
  readonly timeouts: {readonly nodeReadyMs: number; readonly tunnelMs: number}
}

/** One worker being joined: what its steps learn, in order, about it. */
export interface JoinTarget {
  readonly run: JoinRun
  readonly worker: WorkerSpec
  /** Set by the connect step. */
  host?: SshHost
  facts?: HostFacts
  /** Set when a step changed the agent's config, binary or service: the agent (re)starts. */
  agentChanged?: boolean
  /** Set by the connect step: paths of the agent install that were there before hybrid (never removed). */
  kept?: readonly string[]
}

/** A join step: one file each under phases/join/, run for every worker in the join phase's pool. */
export interface JoinStep {
  /** Short and imperative, shown in the worker's row ("upload k3s"). */
  readonly title: string
  run(target: JoinTarget, handle: HostHandle): Promise<void>
  /** How long the step may take (default stepDeadlineMs: a handful of remote commands). */
  deadlineMs?(target: JoinTarget): number
}

/**
 * A step that runs remote commands may take five of the worker's command deadlines: each command is
 * bounded already, so this only catches what is not a command (a wait, a lock, an SFTP request).
 */
export function stepDeadlineMs(target: JoinTarget, extraMs = 0): number {
  return 5 * remoteLimits(target.worker.ssh).commandTimeoutSeconds * 1000 + extraMs
}

/** The connected host and its facts, which every step after `connect` may rely on. */
export function connected(target: JoinTarget): {host: SshHost; facts: HostFacts} {
  if (!target.host || !target.facts) throw new Error(`${target.worker.name}: the join steps ran out of order`)
  return {host: target.host, facts: target.facts}
}
