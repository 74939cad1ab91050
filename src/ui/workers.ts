import type {WorkerRow, WorkersListResult} from '../actions/workers.js'
import {formatDuration} from './format.js'
import {renderTable} from './table.js'

/** The workers table of `workers list` (and of `status`): one row per worker, the tunnel's health beside it. */
export function renderWorkerRows(rows: readonly WorkerRow[], apiReady: boolean): string {
  if (rows.length === 0) return 'no workers (spec.workers is empty, and none was joined)\n'
  return renderTable(
    ['WORKER', 'ADDRESS', 'STATUS', 'NODE', 'AGENT', 'TUNNEL'],
    rows.map((w) => [w.name, w.address ?? '-', w.status, nodeCell(w, apiReady), agentCell(w), tunnelCell(w)]),
  )
}

export function renderWorkers(result: WorkersListResult): string {
  const note = result.apiReady ? '' : `\n(the API of cluster ${result.cluster} does not answer: Node columns unknown)`
  return `${renderWorkerRows(result.workers, result.apiReady).trimEnd()}${note}`
}

function nodeCell(w: WorkerRow, apiReady: boolean): string {
  if (!apiReady) return '?'
  if (!w.node) return 'no Node'
  if (!w.node.ours) return "another's Node of this name"
  return w.node.ready ? `Ready ${w.node.version}`.trim() : `NotReady (${w.node.reason})`
}

function agentCell(w: WorkerRow): string {
  if (!w.agent) return '-'
  return w.agent.state === 'unreachable' ? `unreachable: ${w.agent.error ?? ''}`.trim() : w.agent.state
}

function tunnelCell(w: WorkerRow): string {
  const t = w.tunnel
  if (!t) return '-'
  const since = formatDuration(Date.now() - Date.parse(t.since))
  const again = t.reconnects > 0 ? `, ${t.reconnects} reconnect${t.reconnects === 1 ? '' : 's'}` : ''
  return t.state === 'up'
    ? `up ${since}${again}`
    : `${t.state} ${since}${t.lastError ? `: ${t.lastError}` : ''}${again}`
}
