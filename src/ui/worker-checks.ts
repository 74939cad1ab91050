import type {WorkerCheck, WorkerChecks} from '../remote/worker-check.js'
import {formatDuration} from './format.js'
import {renderTable} from './table.js'

/**
 * The worker checks as people read them: one aligned row per worker, then each problem on its own
 * line. (--json prints the WorkerChecks document itself: the same per worker, facts included.)
 */

const HEADER = [
  'WORKER',
  'ADDRESS',
  'REACHABLE',
  'AUTH',
  'HOST KEY',
  'SUDO',
  'OS',
  'ARCH',
  'INIT',
  'TUNNEL',
  'K3S',
  'RESULT',
]

export function workerRow(check: WorkerCheck): string[] {
  const dash = (value: string | null) => value ?? '-'
  const os = check.facts?.os ? `${check.facts.os.id} ${check.facts.os.version}`.trim() : check.facts ? 'unknown' : '-'
  return [
    check.name,
    check.address,
    check.reachable ? 'yes' : 'no',
    check.auth === 'not-tried' ? '-' : check.auth,
    check.hostKey === 'not-checked' ? '-' : check.hostKey,
    check.sudo === 'not-checked' ? '-' : check.sudo,
    os,
    dash(check.arch),
    dash(check.init),
    check.tunnel === 'unknown' && !check.facts ? '-' : check.tunnel,
    dash(check.k3s),
    check.problems.length === 0 ? 'ok' : `${check.problems.length} problem${check.problems.length === 1 ? '' : 's'}`,
  ]
}

export function renderWorkerChecks(report: WorkerChecks): string {
  if (report.workers.length === 0) return 'no workers in the inventory\n'
  let out = renderTable(HEADER, report.workers.map(workerRow))
  const problems = report.workers.flatMap((w) => w.problems)
  if (problems.length > 0) out += `\n${problems.map((p) => `- ${p}`).join('\n')}\n`
  const bad = report.workers.filter((w) => w.problems.length > 0).length
  out += `\n${report.workers.length - bad} of ${report.workers.length} worker${report.workers.length === 1 ? '' : 's'} ready, checked in ${formatDuration(report.elapsedMs)}\n`
  return out
}
