import type {Change, HostOutcome, PlanResult} from '../plan/index.js'
import {formatDuration} from './format.js'
import {renderTable} from './table.js'

/**
 * What a command prints when a run ends: the per-host table, the list of changes (the dry-run plan),
 * and the same as one JSON document for --json.
 */

/** The hosts table: HOST, RESULT, the step reached, elapsed time, and the error or reason. */
export function renderHostTable(hosts: readonly HostOutcome[]): string {
  if (hosts.length === 0) return ''
  return renderTable(
    ['HOST', 'RESULT', 'STEP', 'TIME', 'DETAIL'],
    hosts.map((h) => [h.host, h.status, h.step ?? '-', formatDuration(h.elapsedMs), h.error ?? h.reason ?? '']),
  )
}

/**
 * The changes, grouped by phase, each line "host: sentence". Under --dry-run this is the plan: what a
 * real run would change. Empty list: a sentence saying nothing would (or did) change.
 */
export function renderChanges(changes: readonly Change[], dryRun: boolean): string {
  if (changes.length === 0) return dryRun ? 'dry run: nothing would change\n' : 'nothing changed\n'
  const lines = [
    dryRun
      ? `dry run: ${changes.length} change${changes.length === 1 ? '' : 's'} would be made:`
      : `${changes.length} change${changes.length === 1 ? '' : 's'} made:`,
  ]
  let phase: string | undefined
  for (const c of changes) {
    if (c.phase !== phase) {
      phase = c.phase
      lines.push(`  ${phase}`)
    }
    lines.push(`    ${c.host}: ${c.sentence}`)
  }
  return lines.join('\n') + '\n'
}

/** One sentence for the end of a run, e.g. "2 of 3 hosts done, 1 failed (exit 3)". */
export function renderOutcomeLine(result: PlanResult): string {
  const count = (s: HostOutcome['status']) => result.hosts.filter((h) => h.status === s).length
  const parts = [`${count('ok')} of ${result.hosts.length} host${result.hosts.length === 1 ? '' : 's'} ok`]
  for (const s of ['failed', 'skipped', 'interrupted'] as const) if (count(s)) parts.push(`${count(s)} ${s}`)
  const head =
    result.status === 'failed'
      ? `failed in phase "${result.failure?.phase}": ${result.failure?.message}`
      : result.status === 'interrupted'
        ? 'interrupted'
        : result.dryRun
          ? 'dry run done'
          : 'done'
  const hosts = result.hosts.length ? `; ${parts.join(', ')}` : ''
  return `${head}${hosts} in ${formatDuration(result.elapsedMs)} (exit ${result.exitCode})\n`
}

/** Everything a human reads at the end: changes (for a dry run), the host table, clean-up failures, the outcome. */
export function renderSummary(result: PlanResult): string {
  let out = ''
  if (result.dryRun) out += renderChanges(result.changes, true)
  out += renderHostTable(result.hosts)
  for (const f of result.cleanupFailures) out += `clean-up of "${f.phase}" failed: ${f.message}\n`
  for (const d of result.failure?.details ?? []) out += `  ${d}\n`
  return out + renderOutcomeLine(result)
}
