import {type AgentState, agentStates} from '../agent/agent-state.js'
import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {kubeConfigFromFile} from '../kube/client.js'
import {listNodes, type NodeSummary} from '../kube/nodes.js'
import {apiReady} from '../kube/readiness.js'
import {isWorkersNode, workerNodeIdentity} from '../kube/worker-node.js'
import {Plan, type PlanResult, runPlan} from '../plan/index.js'
import {applyCni} from '../phases/apply-cni.js'
import type {ClusterContext, InventoryInput} from '../phases/context.js'
import {type JoinSelection, joinWorkers} from '../phases/join-workers.js'
import {type LeaveSelection, leaveWorkers} from '../phases/leave-workers.js'
import {readState} from '../state/cluster-state.js'
import {ownerAlive} from '../state/owner.js'
import {readTunnels, type TunnelStatus} from '../state/tunnel-status.js'
import {listWorkerRecords, type WorkerRecord} from '../state/worker-records.js'
import {upDecision} from '../state/up-decision.js'
import {pathExists} from '../util/path-exists.js'
import {type ActionEnv, clusterContext} from './context.js'
import {planError} from './plan-error.js'
import {lockCluster} from './run-lock.js'

/** One worker as `workers list` and `status` show it: the inventory, hybrid's record and the cluster side by side. */
export interface WorkerRow {
  readonly name: string
  readonly address: string | null
  /**
   * joined: recorded and its Node Ready; not-ready: recorded, Node missing or not Ready; joining/removing:
   * a run stopped half way (a re-run resumes); missing: in the inventory, never joined; unknown: a Node
   * of the cluster that neither the inventory nor a record knows (joined by other means).
   */
  readonly status: 'joined' | 'not-ready' | 'joining' | 'removing' | 'missing' | 'unknown'
  readonly inInventory: boolean
  /** The Node of the worker's name; `ours` false: it is not this worker's (no hybrid label, another InternalIP). */
  readonly node: {
    readonly ready: boolean
    readonly reason: string
    readonly version: string
    readonly ours: boolean
  } | null
  readonly tunnel: Pick<TunnelStatus, 'state' | 'since' | 'lastError' | 'reconnects'> | null
  /** The agent's service on the worker, asked over SSH (null: hybrid installed none there). */
  readonly agent: AgentState | null
}

export interface WorkersListResult {
  readonly cluster: string
  /** The API answered: Node columns are known (else they are null). */
  readonly apiReady: boolean
  readonly workers: readonly WorkerRow[]
}

/** The workers of a cluster, from the inventory (when given), the records, the tunnels file and the API. Reads only. */
export async function listWorkers(cluster: string, inventory?: Inventory): Promise<WorkersListResult> {
  const records = await listWorkerRecords(cluster)
  const nodes = await clusterNodes(cluster)
  const tunnels = await liveTunnels(cluster)
  const agents = await agentStates(records)
  return {
    cluster,
    apiReady: nodes !== undefined,
    workers: workerRows(cluster, inventory, records, nodes ?? [], tunnels, agents),
  }
}

async function clusterNodes(cluster: string): Promise<NodeSummary[] | undefined> {
  const state = await readState(cluster)
  const file = state?.kubeconfig
  if (!file || !(await pathExists(file))) return undefined
  try {
    const kc = kubeConfigFromFile(file)
    return (await apiReady(kc, 3000)) ? await listNodes(kc) : undefined
  } catch {
    return undefined
  }
}

async function liveTunnels(cluster: string): Promise<readonly TunnelStatus[]> {
  const state = await readState(cluster)
  if (!state || !(await ownerAlive(state))) return []
  return (await readTunnels(cluster))?.tunnels ?? []
}

/** Inventory, records, Nodes, tunnels and agents joined by worker name: inventory order first, then the rest by name. */
export function workerRows(
  cluster: string,
  inventory: Pick<Inventory, 'workers'> | undefined,
  records: readonly WorkerRecord[],
  nodes: readonly NodeSummary[],
  tunnels: readonly TunnelStatus[],
  agents: ReadonlyMap<string, AgentState> = new Map(),
): WorkerRow[] {
  const inInventory = new Map((inventory?.workers ?? []).map((w) => [w.name, w]))
  const recorded = new Map(records.map((r) => [r.worker, r]))
  const byNode = new Map(nodes.map((n) => [n.name, n]))
  const others = [...recorded.keys(), ...nodes.filter((n) => !isSandboxNode(n)).map((n) => n.name)]
  const names = [...inInventory.keys(), ...[...new Set(others)].filter((n) => !inInventory.has(n)).sort()]
  return names.map((name): WorkerRow => {
    const record = recorded.get(name)
    const spec = inInventory.get(name) ?? record?.spec
    const found = byNode.get(name)
    const ours = found !== undefined && (!spec || isWorkersNode(found, workerNodeIdentity(cluster, spec)))
    const node = ours ? found : undefined
    const tunnel = tunnels.find((t) => t.worker === name)
    const status: WorkerRow['status'] = !record
      ? inInventory.has(name) && !node
        ? 'missing'
        : 'unknown'
      : record.phase === 'joining' || record.phase === 'removing'
        ? record.phase
        : node?.ready
          ? 'joined'
          : 'not-ready'
    return {
      name,
      address: inInventory.get(name)?.address ?? record?.spec.address ?? null,
      status,
      inInventory: inInventory.has(name),
      node: found ? {ready: found.ready, reason: found.reason, version: found.version, ours} : null,
      tunnel: tunnel
        ? {
            state: tunnel.state,
            since: tunnel.since,
            reconnects: tunnel.reconnects,
            ...(tunnel.lastError ? {lastError: tunnel.lastError} : {}),
          }
        : null,
      agent: agents.get(name) ?? null,
    }
  })
}

/** The sandbox's own Node (the control plane's agent) is not a worker. */
function isSandboxNode(node: NodeSummary): boolean {
  return node.labels['hybrid.dev/sandbox'] === 'true' || node.labels['node-role.kubernetes.io/control-plane'] === 'true'
}

/** What `workers add` and `workers remove` print with --json. */
export interface WorkersChangeResult {
  readonly cluster: string
  readonly outcome: 'done' | 'partly-done' | 'dry-run'
  readonly plan: PlanResult
}

/** Names that are not the inventory's workers: bad usage, named in one sentence. */
function checkNames(inventory: Inventory, names: readonly string[]): void {
  const unknown = names.filter((n) => !inventory.workers.some((w) => w.name === n))
  if (unknown.length > 0)
    throw new HybridError(
      'WORKER_UNKNOWN',
      `${inventory.file}: spec.workers has no worker named ${unknown.join(', ')}; add it there first (known: ${inventory.workers.map((w) => w.name).join(', ') || 'none'})`,
      {exitCode: 2},
    )
}

const ADD = Plan.start<ClusterContext & InventoryInput & JoinSelection>().then(applyCni).then(joinWorkers)
const REMOVE = Plan.start<ClusterContext & LeaveSelection>().then(leaveWorkers)

/** `workers add NAME…`: join workers of the inventory to the running cluster (those already joined: nothing to do). */
export async function addWorkers(
  env: ActionEnv,
  options: {readonly inventory: Inventory; readonly names: readonly string[]; readonly dryRun: boolean},
): Promise<PlanResult> {
  const {inventory, names} = options
  checkNames(inventory, names)
  const decision = await upDecision(inventory)
  if (decision === 'restart')
    throw new HybridError(
      'AGENT_TOKEN_MISSING',
      `cluster ${inventory.name} runs without an agent token of its own, and workers never get the server's; \`hybrid up --inventory ${inventory.file}\` restarts it with one and moves every worker to it`,
    )
  if (decision === 'upgrade')
    throw new HybridError(
      'CLUSTER_SETTINGS_CHANGED',
      `cluster ${inventory.name} is being upgraded to k3s ${inventory.k3s.version}; \`hybrid up --inventory ${inventory.file}\` finishes the upgrade, then \`workers add\` joins on it`,
    )
  if (decision !== 'already-up')
    throw new HybridError(
      'CLUSTER_NOT_UP',
      `cluster ${inventory.name} is not up; \`hybrid up --inventory ${inventory.file}\` brings it up with every worker`,
    )
  const ctx = {
    ...clusterContext(env, inventory.name, {dryRun: options.dryRun, concurrency: inventory.concurrency}),
    inventory,
    joinOnly: names,
  }
  const lock = await lockCluster(env, inventory.name, options.dryRun)
  try {
    return finished(await runPlan(ADD, ctx), '`hybrid workers add`')
  } finally {
    await lock?.release()
  }
}

/** `workers remove NAME…`: drain and delete their Nodes, undo what their records say, forget them. */
export async function removeWorkers(
  env: ActionEnv,
  options: {
    readonly cluster: string
    readonly names: readonly string[]
    readonly dryRun: boolean
    readonly keepInstalled: boolean
    readonly drainTimeoutMs: number
    readonly concurrency?: number
  },
): Promise<PlanResult> {
  const {cluster} = options
  const lock = await lockCluster(env, cluster, options.dryRun)
  try {
    return await removeLocked(env, options)
  } finally {
    await lock?.release()
  }
}

async function removeLocked(env: ActionEnv, options: Parameters<typeof removeWorkers>[1]): Promise<PlanResult> {
  const {cluster, names} = options
  const recorded = new Set((await listWorkerRecords(cluster)).map((r) => r.worker))
  const unknown = names.filter((n) => !recorded.has(n))
  if (unknown.length === names.length)
    throw new HybridError(
      'WORKER_UNKNOWN',
      `cluster ${cluster} has no joined worker named ${unknown.join(', ')}; \`hybrid workers list\` shows its workers`,
      {exitCode: 2},
    )
  const state = await readState(cluster)
  const up = state !== undefined && (await ownerAlive(state))
  const ctx = {
    ...clusterContext(env, cluster, {dryRun: options.dryRun, concurrency: options.concurrency}),
    leaveOnly: names.filter((n) => recorded.has(n)),
    drainNodes: up,
    keepInstalled: options.keepInstalled,
    drainTimeoutMs: options.drainTimeoutMs,
  }
  return finished(await runPlan(REMOVE, ctx), '`hybrid workers remove`')
}

/** A plan that stopped on a phase is an error; per-worker failures stay in the result (exit 3 or 1). */
function finished(result: PlanResult, retry: string): PlanResult {
  if (result.status !== 'done') throw planError(result, retry)
  return result
}
