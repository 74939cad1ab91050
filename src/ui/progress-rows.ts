import {createLogUpdate} from 'log-update'

import {printable} from '../log/printable.js'
import {attachLiveRegion} from '../log/terminal.js'
import {formatBytes, formatDuration} from './format.js'
import type {ProgressEvent} from '../plan/progress-events.js'

/**
 * Per-host rows on a terminal, redrawn in place while a host pool runs: the host, the step it is on,
 * its elapsed time, and bytes for uploads. Log lines written meanwhile appear above the rows (the
 * terminal writer takes the rows off the screen for each line, see log/terminal.ts).
 */

export type RowStatus = 'waiting' | 'running' | 'done' | 'failed' | 'skipped'

/** What one row shows. */
export interface RowState {
  host: string
  status: RowStatus
  step?: string
  startedAt?: number
  endedAt?: number
  bytes?: {done: number; total: number}
  /** Error sentence (failed) or reason (skipped). */
  note?: string
}

const MARK: Record<RowStatus, string> = {waiting: ' ', running: '›', done: '✓', failed: '✗', skipped: '-'}

/** The frame: a header line for the phase, then one row per host, each cut to the terminal's width. */
export function renderRows(
  phase: string,
  rows: readonly RowState[],
  now: number,
  columns: number,
  maxRows = Number.POSITIVE_INFINITY,
): string {
  const finished = rows.filter((r) => r.status === 'done' || r.status === 'failed' || r.status === 'skipped').length
  const failed = rows.filter((r) => r.status === 'failed').length
  const header = `${phase}: ${finished}/${rows.length} hosts finished${failed ? `, ${failed} failed` : ''}`
  const hostWidth = Math.max(4, ...rows.map((r) => r.host.length))
  const stepWidth = Math.max(8, ...rows.map((r) => (r.step ?? 'waiting').length))
  // On a short terminal, rows that need attention come first: running and failed, then the rest.
  let shown = rows
  let hidden = 0
  if (rows.length > maxRows) {
    const rank = (r: RowState) => (r.status === 'running' ? 0 : r.status === 'failed' ? 1 : 2)
    shown = [...rows].sort((a, b) => rank(a) - rank(b)).slice(0, Math.max(1, maxRows - 1))
    hidden = rows.length - shown.length
  }
  const lines = [header]
  for (const r of shown) {
    const elapsed = r.startedAt === undefined ? '' : formatDuration((r.endedAt ?? now) - r.startedAt)
    let tail = ''
    if (r.status === 'running' && r.bytes) {
      const pct = r.bytes.total > 0 ? ` ${Math.floor((r.bytes.done / r.bytes.total) * 100)}%` : ''
      tail = `${formatBytes(r.bytes.done)} / ${formatBytes(r.bytes.total)}${pct}`
    } else if (r.note) tail = printable(r.note)
    const line = `${MARK[r.status]} ${r.host.padEnd(hostWidth)}  ${(r.step ?? 'waiting').padEnd(stepWidth)}  ${elapsed.padStart(7)}${tail ? `  ${tail}` : ''}`
    lines.push(line.trimEnd())
  }
  if (hidden) lines.push(`  … ${hidden} more`)
  return lines.map((l) => (l.length > columns - 1 ? `${l.slice(0, Math.max(0, columns - 2))}…` : l)).join('\n')
}

/** One step or bytes event applied to the rows (pure, apart from mutating `rows`). */
export function applyEvent(rows: Map<string, RowState>, event: ProgressEvent, now: number): void {
  if (event.event === 'step') {
    const r = rows.get(event.host)
    if (!r) return
    r.step = event.step
    if (event.status === 'start') {
      r.status = 'running'
      r.startedAt ??= now
      r.endedAt = undefined
      r.bytes = undefined
    } else {
      r.status = event.status
      r.endedAt = now
      r.note = event.status === 'failed' ? event.error : event.reason
    }
  } else if (event.event === 'bytes') {
    const r = rows.get(event.host)
    if (r) r.bytes = {done: event.done, total: event.total}
  }
}

/**
 * stderr as log-update sees it. A terminal that reports no size (0×0, e.g. a fresh pseudo-terminal)
 * counts as 80×24: log-update would otherwise cut every line of the frame away.
 */
const terminal = {
  get columns(): number {
    return process.stderr.columns || 80
  },
  get rows(): number {
    return process.stderr.rows || 24
  },
  write: (text: string) => process.stderr.write(text),
}

/** The live display of the current host pool. */
export class LiveRows {
  private rows = new Map<string, RowState>()
  private phase = ''
  private timer?: NodeJS.Timeout
  private detach?: () => void
  private draw?: ReturnType<typeof createLogUpdate>

  update(event: ProgressEvent): void {
    if (event.event === 'pool' && event.status === 'start') this.start(event.phase, event.hosts)
    else if (event.event === 'pool' && event.status === 'end') this.stop()
    else if (this.draw) applyEvent(this.rows, event, Date.now())
  }

  /** Stop redrawing; the last frame stays on screen. */
  stop(): void {
    if (!this.draw) return
    clearInterval(this.timer)
    this.render()
    this.draw.done()
    this.detach?.()
    this.draw = undefined
    this.detach = undefined
  }

  private start(phase: string, hosts: readonly string[]): void {
    this.stop()
    this.phase = phase
    this.rows = new Map(hosts.map((host) => [host, {host, status: 'waiting'}]))
    const draw = createLogUpdate(terminal as unknown as NodeJS.WriteStream)
    this.draw = draw
    this.detach = attachLiveRegion({clear: () => draw.clear(), redraw: () => this.render()})
    this.render()
    // The elapsed times tick; redraw a few times a second (unref: never keeps the process alive).
    this.timer = setInterval(() => this.render(), 250)
    this.timer.unref()
  }

  private render(): void {
    this.draw?.(
      renderRows(this.phase, [...this.rows.values()], Date.now(), terminal.columns, Math.max(3, terminal.rows - 2)),
    )
  }
}
