import type {AcquiredBinary} from '../k3s/acquire.js'
import type {ServerConfig} from '../k3s/server-config.js'
import type {Inventory} from '../inventory/model.js'
import type {PlanContext} from '../plan/phase.js'
import type {K3sFailure} from '../sandbox/k3s-failure.js'
import type {Supervisor} from '../sandbox/supervisor.js'
import type {ProbeFinding, Workaround, WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import type {ClusterPaths, ClusterState, LaunchSpec} from '../state/cluster-state.js'

/**
 * What the control-plane phases (up, down, and the supervisor's own teardown) share. Each field says
 * which phase fills it; phases read only what earlier phases filled.
 */
export interface ControlPlaneContext extends PlanContext {
  /** The cluster's name (from the inventory, or the state when `--inventory` was omitted). */
  readonly cluster: string
  /** Absent for down/status/kubeconfig run without `--inventory` (they work from the state alone). */
  readonly inventory?: Inventory
  readonly paths: ClusterPaths
  /** up --detach: the supervisor runs as a detached child, and this process returns once it is ready. */
  readonly detach: boolean
  /** This process is that detached child (`up --supervise`): the supervisor runs here. */
  readonly detachedSupervisor?: boolean

  /** load-state: the state found (undefined: none), then the state this run keeps. */
  state?: ClusterState
  /** prepare-state: the cluster is already up exactly as the inventory says; `up` changes nothing. */
  alreadyUp?: boolean
  /** prepare-state: this run created the state (so a failed `up` removes it again). */
  createdState?: boolean
  /** prepare-state: the topmost directory this run created for the data dir (a failed first `up` removes it). */
  createdDataDir?: string

  /** preflight: what each workaround's probe found, and the ones `up` applies, in order. */
  findings?: ReadonlyMap<string, ProbeFinding>
  selected?: readonly Workaround[]
  workaroundContext?: WorkaroundContext

  /** acquire-k3s. */
  k3s?: AcquiredBinary
  /** prepare-token: the file k3s reads the token from; and the one it created, if it did. */
  tokenFile?: string
  createdTokenFile?: string
  /** write-server-config. */
  serverConfig?: ServerConfig
  /** start-control-plane. */
  launch?: LaunchSpec
  /** start-control-plane: the running supervisor, in this process or a detached child. */
  supervisor?: SupervisorHandle
  /** write-kubeconfig: the user's kubeconfig file. */
  kubeconfig?: string
}

/** A supervisor as phases see it, whether it runs in this process or as a detached child. */
export interface SupervisorHandle {
  /** The process that supervises (this one, or the child). */
  readonly pid: number
  readonly detached: boolean
  /** Settles once: ready, or why k3s never got there. */
  readonly ready: Promise<void>
  /** Stop k3s (and, for a child, the child itself); resolves when they are gone. */
  stop(): Promise<void>
  /** In this process only: the supervisor itself (counters, restarts, `done`). */
  readonly local?: Supervisor
  /** A detached child only: let this process exit without it (close the IPC channel, unref). */
  release?(): void
}

export type {K3sFailure}

/** The host name control-plane steps carry in logs, changes and the summary. */
export const CONTROL_PLANE_HOST = 'control-plane'
