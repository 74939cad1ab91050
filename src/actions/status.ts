import {readFile} from 'node:fs/promises'
import {withDeadline} from '../util/abort.js'

import {agentStates} from '../agent/agent-state.js'
import {kubeConfigFromFile, kubeConfigFromString, serverOf} from '../kube/client.js'
import {clusterKubeconfig} from '../kube/cluster-kubeconfig.js'
import {listNodes, type NodeSummary} from '../kube/nodes.js'
import {apiReady} from '../kube/readiness.js'
import {isElsewhere} from '../sandbox/location.js'
import {clusterPaths, readState} from '../state/cluster-state.js'
import {ownerAlive} from '../state/owner.js'
import {readTunnels} from '../state/tunnel-status.js'
import {listMovedAsideRecords, listWorkerRecords} from '../state/worker-records.js'
import {isK3sServer} from '../util/processes.js'
import {type WorkerRow, workerRows} from './workers.js'
import {pathExists} from '../util/path-exists.js'
import {sandboxCniPath} from '../k3s/sandbox-cni.js'
import {readLastSnapshot} from '../snapshot/take.js'

/** What `hybrid status` shows, and prints with --json. */
export interface StatusResult {
  readonly cluster: string
  /** The supervisor runs (k3s may be restarting); for a cluster elsewhere: its API answers. */
  readonly up: boolean
  /**
   * The cluster runs in another pid namespace (a sandbox, seen from its host): its pids are not this
   * machine's, so the API's health stands for the processes.
   */
  readonly elsewhere?: boolean
  /** From the state: preparing, starting, ready, stopped; absent when there is no state. */
  readonly phase?: string
  /** Why the supervisor gave up (phase stopped). */
  readonly failure?: string
  readonly inventory?: string
  readonly supervisor?: {
    readonly pid: number
    readonly alive: boolean
    readonly detached: boolean
    readonly startedAt: string
  }
  readonly k3s?: {
    readonly pid: number
    readonly alive: boolean
    readonly startedAt: string
    readonly uptimeSeconds: number | null
    readonly restarts: number
    readonly binary: string
  }
  readonly workarounds: readonly string[]
  /** The interceptor's counters as the supervisor last wrote them (rewrites by path, …); null without the interceptor. */
  readonly interceptor: ({readonly updatedAt: string} & Record<string, unknown>) | null
  readonly api?: {readonly server: string; readonly ready: boolean}
  readonly nodes: readonly NodeSummary[]
  /**
   * The sandbox's own Node when its kubelet has only hybrid's loopback CNI config (src/k3s/sandbox-cni.ts):
   * pods there run with host network only. Absent otherwise.
   */
  readonly sandboxNode?: {readonly name: string; readonly hostNetworkOnly: true}
  /** The workers: the records, the Nodes and the tunnels side by side (as `workers list` shows them). */
  readonly workers: readonly WorkerRow[]
  /** Worker records that were unusable and moved aside (`<worker>.json.corrupt-<time>`), for a user to look at. */
  readonly movedAside?: readonly string[]
  readonly kubeconfig?: string
  /** The last snapshot this sandbox took: when, how big, on which workers. */
  readonly lastSnapshot?: {
    readonly id: string
    readonly takenAt: string
    readonly bytes: number
    readonly stored: readonly string[]
    readonly failed: readonly string[]
  }
}

/**
 * Everything status shows, from the state file, /proc, the counters file and the API. Reads only, except
 * that an unusable worker record is moved aside (state/worker-records.ts), as the supervisor would.
 */
export async function collectStatus(cluster: string): Promise<StatusResult> {
  const paths = clusterPaths(cluster)
  const state = await readState(cluster)
  if (!state) return {cluster, up: false, workarounds: [], interceptor: null, nodes: [], workers: []}
  const elsewhere = await isElsewhere(state)
  const supervisorAlive = !elsewhere && (await ownerAlive(state))
  const binary = state.launch?.binary ?? ''
  const k3sAlive = !elsewhere && state.k3s ? await isK3sServer(state.k3s.pid, binary) : false
  let api: StatusResult['api']
  let nodes: NodeSummary[] = []
  try {
    // From elsewhere only the user's kubeconfig, pointed at the recorded address, reaches the API.
    const found = await clusterKubeconfig(cluster, state)
    const kc = found
      ? kubeConfigFromString(found.text, found.file)
      : !elsewhere && state.launch && (await pathExists(state.launch.k3sKubeconfig))
        ? kubeConfigFromFile(state.launch.k3sKubeconfig)
        : undefined
    if (kc && (elsewhere || k3sAlive)) {
      const ready = await apiReady(kc, 3000)
      api = {server: serverOf(kc), ready}
      // An API that answered /readyz may still hang a list: status answers within seconds regardless.
      if (ready)
        nodes = await withDeadline(listNodes(kc), 3000, () => new Error('the node list did not come')).catch(() => [])
    }
  } catch {
    api = undefined
  }
  return {
    cluster,
    up: elsewhere ? api?.ready === true : supervisorAlive,
    ...(elsewhere ? {elsewhere} : {}),
    phase: state.phase,
    ...(state.failure ? {failure: state.failure} : {}),
    inventory: state.inventory,
    ...(state.supervisor
      ? {
          supervisor: {
            pid: state.supervisor.pid,
            alive: supervisorAlive,
            detached: state.supervisor.detached,
            startedAt: state.supervisor.startedAt,
          },
        }
      : {}),
    ...(state.k3s
      ? {
          k3s: {
            pid: state.k3s.pid,
            alive: k3sAlive,
            startedAt: state.k3s.startedAt,
            uptimeSeconds: k3sAlive ? Math.round((Date.now() - Date.parse(state.k3s.startedAt)) / 1000) : null,
            restarts: state.k3s.restarts,
            binary,
          },
        }
      : {}),
    workarounds: state.workarounds.map((r) => r.id),
    interceptor: supervisorAlive || elsewhere ? await readCounters(paths.counters) : null,
    ...(api ? {api} : {}),
    nodes,
    ...(state.launch?.nodeName && (await pathExists(sandboxCniPath(state.dataDir)))
      ? {sandboxNode: {name: state.launch.nodeName, hostNetworkOnly: true as const}}
      : {}),
    workers: await (async () => {
      const records = await listWorkerRecords(cluster)
      const tunnels = supervisorAlive ? ((await readTunnels(cluster))?.tunnels ?? []) : []
      return workerRows(cluster, undefined, records, nodes, tunnels, await agentStates(records))
    })(),
    ...(await (async () => {
      const moved = await listMovedAsideRecords(cluster)
      return moved.length > 0 ? {movedAside: moved} : {}
    })()),
    ...((await pathExists(paths.kubeconfig)) ? {kubeconfig: paths.kubeconfig} : {}),
    ...(await (async () => {
      const last = await readLastSnapshot(paths)
      if (!last) return {}
      const lastSnapshot = {
        id: last.manifest.id,
        takenAt: last.manifest.createdAt,
        bytes: last.bytes,
        stored: last.copies.filter((c) => c.path).map((c) => c.worker),
        failed: last.copies.filter((c) => c.error).map((c) => c.worker),
      }
      return {lastSnapshot}
    })()),
  }
}

async function readCounters(file: string): Promise<StatusResult['interceptor']> {
  try {
    const document = JSON.parse(await readFile(file, 'utf8')) as {updatedAt: string; counters: Record<string, unknown>}
    return {updatedAt: document.updatedAt, ...document.counters}
  } catch {
    return null
  }
}
