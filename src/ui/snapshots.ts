import type {SnapshotListResult} from '../actions/snapshot.js'
import type {TakenSnapshot} from '../snapshot/take.js'
import {formatBytes} from './format.js'
import {renderTable} from './table.js'

/** `hybrid snapshot list`: one row per copy, newest first; WORKER:ID is what `up --restore-from` takes. */
export function renderSnapshotList(result: SnapshotListResult): string {
  const lines: string[] = []
  if (result.snapshots.length === 0) lines.push(`no snapshot of cluster ${result.cluster} found`)
  else
    lines.push(
      renderTable(
        ['SNAPSHOT', 'TAKEN', 'SIZE', 'K3S', 'NOTE'],
        result.snapshots.map((s) => [
          `${s.worker}:${s.id}`,
          s.createdAt ?? '-',
          formatBytes(s.bytes),
          s.k3sVersion ?? '-',
          s.problem ?? (s.cluster && s.cluster !== result.cluster ? `of cluster ${s.cluster}` : ''),
        ]),
      ),
    )
  for (const u of result.unreachable) lines.push(`${u.worker}: not asked: ${u.error}`)
  return lines.join('\n')
}

/** `hybrid snapshot save`: what was taken and where it went. */
export function renderSnapshotTaken(taken: TakenSnapshot): string {
  const lines = [`snapshot ${taken.manifest.id} taken (${formatBytes(taken.bytes)}, encrypted)`]
  for (const copy of taken.copies)
    lines.push(
      copy.path ? `  ${copy.worker}: ${copy.path} (sha256 verified)` : `  ${copy.worker}: failed: ${copy.error}`,
    )
  return lines.join('\n')
}
