import type {UpSummary} from '../actions/up-summary.js'
import {formatDuration} from './format.js'
import {renderTable} from './table.js'

/** The summary `up` prints once the cluster is up: the k3s that runs, the Nodes, the stages' times. */
export function renderUpSummary(summary: UpSummary): string {
  const lines: string[] = []
  if (summary.k3s) lines.push(`k3s: ${summary.k3s.version} (${summary.k3s.binary})`)
  if (summary.nodes.length > 0)
    lines.push(
      renderTable(
        ['NODE', 'READY', 'VERSION', 'TAINTS'],
        summary.nodes.map((n) => [
          n.name,
          n.ready ? 'Ready' : `NotReady (${n.reason})`,
          n.version || '-',
          n.taints.join(', ') || '-',
        ]),
      ).trimEnd(),
    )
  const slow = summary.stages.filter((s) => s.elapsedMs >= 100)
  lines.push(
    `took ${formatDuration(summary.elapsedMs)}${slow.length > 0 ? `: ${slow.map((s) => `${s.title} ${formatDuration(s.elapsedMs)}`).join(', ')}` : ''}`,
  )
  return lines.join('\n')
}
