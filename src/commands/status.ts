import {readFile} from 'node:fs/promises'

import {inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {kubeConfigFromFile, serverOf} from '../kube/client.js'
import {listNodes, type NodeSummary} from '../kube/nodes.js'
import {apiReady} from '../kube/readiness.js'
import {ownerAlive} from '../phases/load-state.js'
import {formatDuration, renderTable} from '../plan/index.js'
import {clusterPaths, readState} from '../state/cluster-state.js'
import {resolveCluster} from '../state/current.js'
import {isK3sServer} from '../state/processes.js'
import {pathExists} from '../util/path-exists.js'

export interface StatusResult {
  readonly cluster: string
  /** The supervisor runs (k3s may be restarting). */
  readonly up: boolean
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
  readonly kubeconfig?: string
}

export default class Status extends HybridCommand {
  static override summary =
    'Show the control plane: supervisor and k3s processes, interceptor counters, API readiness, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']
  static override flags = {
    inventory: inventoryFlag(),
  }

  async run(): Promise<StatusResult> {
    const {flags} = await this.parse(Status)
    const {cluster} = await resolveCluster(flags.inventory)
    const result = await collectStatus(cluster)
    if (!this.jsonEnabled()) this.log(renderStatus(result))
    return result
  }
}

/** Everything status shows, from the state file, /proc, the counters file and the API. Reads only. */
export async function collectStatus(cluster: string): Promise<StatusResult> {
  const paths = clusterPaths(cluster)
  const state = await readState(cluster)
  if (!state) return {cluster, up: false, workarounds: [], interceptor: null, nodes: []}
  const supervisorAlive = await ownerAlive(state)
  const binary = state.launch?.binary ?? ''
  const k3sAlive = state.k3s ? await isK3sServer(state.k3s.pid, binary) : false
  const kubeconfigFile = (await pathExists(paths.kubeconfig)) ? paths.kubeconfig : state.launch?.k3sKubeconfig
  let api: StatusResult['api']
  let nodes: NodeSummary[] = []
  if (kubeconfigFile && k3sAlive && (await pathExists(kubeconfigFile))) {
    try {
      const kc = kubeConfigFromFile(kubeconfigFile)
      const ready = await apiReady(kc, 3000)
      api = {server: serverOf(kc), ready}
      if (ready) nodes = await listNodes(kc).catch(() => [])
    } catch {
      api = undefined
    }
  }
  return {
    cluster,
    up: supervisorAlive,
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
    interceptor: supervisorAlive ? await readCounters(paths.counters) : null,
    ...(api ? {api} : {}),
    nodes,
    ...((await pathExists(paths.kubeconfig)) ? {kubeconfig: paths.kubeconfig} : {}),
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

/** The human view: a few aligned lines, then the nodes table. */
export function renderStatus(s: StatusResult): string {
  if (!s.phase) return `cluster ${s.cluster} is not up`
  const lines: string[] = []
  const head = s.up
    ? `cluster ${s.cluster} is up (${s.phase})`
    : s.phase === 'stopped'
      ? `cluster ${s.cluster} stopped: ${s.failure ?? 'unknown reason'}`
      : `cluster ${s.cluster} is not running (its supervisor is gone; \`hybrid down\` cleans up)`
  lines.push(head)
  if (s.supervisor)
    lines.push(
      `supervisor  pid ${s.supervisor.pid}, ${s.supervisor.alive ? 'running' : 'gone'}${s.supervisor.detached ? ', detached' : ', foreground'}`,
    )
  if (s.k3s)
    lines.push(
      `k3s server  pid ${s.k3s.pid}, ${s.k3s.alive ? `up ${formatDuration((s.k3s.uptimeSeconds ?? 0) * 1000)}` : 'not running'}, ${s.k3s.restarts} restart${s.k3s.restarts === 1 ? '' : 's'}`,
    )
  lines.push(`workarounds ${s.workarounds.length > 0 ? s.workarounds.join(', ') : 'none'}`)
  if (s.interceptor) {
    const rewrites = (s.interceptor.rewrites ?? {}) as Record<string, number>
    const byPath = Object.entries(rewrites).map(([path, n]) => `${path} ×${n}`)
    lines.push(
      `interceptor ${s.interceptor.stops ?? 0} stops, ${s.interceptor.tracees ?? 0} tracees; rewrites: ${byPath.length > 0 ? byPath.join(', ') : 'none yet'}`,
    )
  }
  if (s.api) lines.push(`API         ${s.api.server} ${s.api.ready ? 'ready' : 'not ready'}`)
  if (s.kubeconfig) lines.push(`kubeconfig  ${s.kubeconfig}`)
  let out = lines.join('\n')
  if (s.nodes.length > 0)
    out += `\n\n${renderTable(
      ['NODE', 'READY', 'TAINTS'],
      s.nodes.map((n) => [n.name, n.ready ? 'Ready' : `NotReady (${n.reason})`, n.taints.join(', ') || '-']),
    )}`.trimEnd()
  return out
}
