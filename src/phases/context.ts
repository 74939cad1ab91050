import type {AcquiredBinary} from '../k3s/acquire.js'
import type {ServerConfig} from '../k3s/server-config.js'
import type {Inventory} from '../inventory/model.js'
import type {PlanContext} from '../plan/index.js'
import type {SshConnections} from '../remote/connections.js'
import type {SupervisorHandle} from '../sandbox/supervisor-handle.js'
import type {ProbeFinding, Workaround, WorkaroundContext} from '../sandbox/workarounds/workaround.js'
import type {ClusterPaths, ClusterState, LaunchSpec} from '../state/cluster-state.js'

/**
 * The typed pieces of the control-plane phases' context (docs/architecture.md, "Plans and phases"). An
 * action starts from `ClusterContext` plus its inputs; each phase declares the pieces it reads and
 * returns the piece it gives, and `Plan` checks at compile time that every piece read was given before.
 */

export {CONTROL_PLANE_HOST} from '../sandbox/host.js'

/** Fixed before any phase runs: which cluster, and where its files are. */
export interface ClusterContext extends PlanContext {
  readonly cluster: string
  readonly paths: ClusterPaths
}

/** The inventory the command was given (`up`; `down` and `status` work from the state alone). */
export interface InventoryInput {
  readonly inventory: Inventory
}

/**
 * Where the supervisor runs: in this process (`up` in the foreground); in a detached child this process
 * starts and leaves running (`up --detach`); or this process is that child (`up --supervise`).
 */
export interface SupervisionInput {
  readonly supervision: 'foreground' | 'detach' | 'detached-child'
}

/** load-state gives: what hybrid recorded for the cluster; undefined when it recorded nothing. */
export interface LoadedState {
  state: ClusterState | undefined
}

/** prepare-state (or adopt-state) gives: a state this process owns and keeps up to date. */
export interface OwnedState {
  state: ClusterState
}

/** preflight gives: what each probe found, and the workarounds to apply, in order. */
export interface ChosenWorkarounds {
  readonly findings: ReadonlyMap<string, ProbeFinding>
  readonly selected: readonly Workaround[]
  readonly workaroundContext: WorkaroundContext
}

/** An upgrade of a running cluster (docs/architecture.md, "Upgrades"): the k3s it runs, and the inventory's. */
export interface UpgradeInput {
  readonly upgrade: {readonly from: string; readonly to: string}
}

/** acquire-k3s gives: the binary (undefined only under --dry-run, when nothing was fetched). */
export interface K3sBinary {
  readonly k3s: AcquiredBinary | undefined
}

/**
 * prepare-token gives: the files k3s reads the cluster token and the agent token from, and those this run
 * created, if it did.
 */
export interface TokenFile {
  readonly tokenFile: string
  readonly createdTokenFile?: string
  readonly agentTokenFile: string
  readonly createdAgentTokenFile?: string
}

/** write-server-config gives. */
export interface ServerConfigWritten {
  readonly serverConfig: ServerConfig
}

/** record-launch (or adopt-state) gives: exactly how the supervisor starts k3s. */
export interface Launched {
  readonly launch: LaunchSpec
}

/** start-control-plane gives: the running supervisor, in this process or a detached child. */
export interface Supervised {
  supervisor: SupervisorHandle | undefined
}

/**
 * check-the-workers gives: its connections to the workers, kept for the join (which closes them), so a
 * worker is logged into once per run; undefined where no check ran (`workers add`, a cluster already up).
 */
export interface WorkerConnections {
  readonly workerConnections?: SshConnections
}

/** write-kubeconfig gives: the user's kubeconfig file. */
export interface KubeconfigWritten {
  readonly kubeconfig: string
}
