import type {Logger} from '../log/logger.js'
import {redactValue} from '../log/redact.js'
import type {Progress, ProgressEvent, ProgressMode} from '../plan/progress-events.js'
import {formatBytes, formatDuration} from './format.js'
import {LiveRows} from './progress-rows.js'

/** Where progress goes for these flags and this stderr (TERM=dumb gets plain lines). */
export function progressMode(options: {
  json: boolean
  logFormat: 'pretty' | 'json'
  stderrIsTTY: boolean
  term?: string
}): ProgressMode {
  if (options.json) return 'json'
  if (options.stderrIsTTY && options.logFormat === 'pretty' && options.term !== 'dumb') return 'tty'
  return 'plain'
}

export interface ProgressOptions {
  mode: ProgressMode
  logger: Logger
  /** Where JSON events go (default process.stdout). */
  out?: {write(text: string): unknown}
  /** Least time between two `bytes` events of one host in JSON mode (default 1000 ms). */
  bytesIntervalMs?: number
}

/** Least time between two plain lines of one upload between its quarters. */
const PLAIN_BYTES_INTERVAL_MS = 10_000

export function createProgress(options: ProgressOptions): Progress {
  return new Reporter(options)
}

class Reporter implements Progress {
  readonly mode: ProgressMode
  private readonly logger: Logger
  private readonly out: {write(text: string): unknown}
  private readonly bytesInterval: number
  private readonly hostLoggers = new Map<string, Logger>()
  private readonly lastBytes = new Map<string, number>()
  /** Per host, the quarter of its current transfer last logged in plain mode, and when. */
  private readonly loggedBytes = new Map<string, {quarter: number; at: number; done: number}>()
  private readonly rows?: LiveRows

  constructor(options: ProgressOptions) {
    this.mode = options.mode
    this.logger = options.logger
    this.out = options.out ?? process.stdout
    this.bytesInterval = options.bytesIntervalMs ?? 1000
    if (this.mode === 'tty') this.rows = new LiveRows()
  }

  report(event: ProgressEvent): void {
    if (this.mode === 'json' && this.due(event))
      this.out.write(JSON.stringify(redactValue({time: new Date().toISOString(), ...event})) + '\n')
    this.rows?.update(event)
    this.logLine(event)
  }

  close(): void {
    this.rows?.stop()
  }

  /** Bytes events are many; the JSON stream gets one per interval per host, and the last. */
  private due(event: ProgressEvent): boolean {
    if (event.event !== 'bytes') return true
    const now = Date.now()
    const last = this.lastBytes.get(event.host) ?? 0
    if (event.done < event.total && now - last < this.bytesInterval) return false
    this.lastBytes.set(event.host, now)
    return true
  }

  /**
   * The plain line for an event, through the logger (so it reaches the log file too, redacted). On a
   * terminal the rows already show steps, so step lines go to the log file only (debug).
   */
  private logLine(event: ProgressEvent): void {
    const stepLevel = this.mode === 'tty' ? 'debug' : 'info'
    switch (event.event) {
      case 'phase': {
        const level = {start: 'info', skipped: 'info', failed: 'error', done: 'debug', interrupted: 'debug'} as const
        // A failure's sentence ends the command (`hybrid: …`): on a terminal this line only says which
        // phase failed; the sentence stays in the field, for the log file and JSON.
        if (event.status === 'failed') {
          this.logger.error({phase: event.phase, phaseError: event.error}, phaseLine({...event, error: undefined}))
          return
        }
        this.logger[level[event.status]]({phase: event.phase}, phaseLine(event))
        return
      }
      case 'cleanup':
        // A failed clean-up is logged by the runner itself, with its stack for the log file.
        if (event.status !== 'failed')
          this.logger.info({phase: event.phase}, `clean-up of ${event.phase}: ${event.status}`)
        return
      case 'step':
        this.forHost(event.host)[event.status === 'failed' ? 'error' : stepLevel](
          {phase: event.phase, step: event.step},
          stepLine(event),
        )
        return
      case 'bytes':
        // The step's end line says it is complete; in between, a line per quarter (and per interval of a slow
        // one), so the lines per worker do not grow when many uploads share the link and each takes longer.
        if (this.mode === 'plain' && event.done < event.total && this.plainDue(event))
          this.forHost(event.host).info(
            {step: event.step},
            `${event.step}: ${formatBytes(event.done)} of ${formatBytes(event.total)}`,
          )
        return
      case 'change':
        // A real run's changes are logged by wet() before it acts; a dry run's are news.
        if (event.dryRun) this.forHost(event.host).info({phase: event.phase}, `would ${event.sentence}`)
        return
      default:
        return
    }
  }

  private plainDue(event: Extract<ProgressEvent, {event: 'bytes'}>): boolean {
    const now = Date.now()
    const quarter = Math.floor((event.done * 4) / Math.max(event.total, 1))
    let last = this.loggedBytes.get(event.host)
    // A transfer that starts again (a new step, or a retry) counts its quarters afresh.
    if (!last || event.done < last.done) {
      last = {quarter: 0, at: now, done: 0}
      this.loggedBytes.set(event.host, last)
    }
    last.done = event.done
    if (quarter <= last.quarter && now - last.at < PLAIN_BYTES_INTERVAL_MS) return false
    last.quarter = quarter
    last.at = now
    return true
  }

  private forHost(host: string): Logger {
    let log = this.hostLoggers.get(host)
    if (!log) {
      log = this.logger.child({host})
      this.hostLoggers.set(host, log)
    }
    return log
  }
}

/** "==> install agents", "install cni skipped (cni: none)", "start control plane failed in 3.0s: …". */
function phaseLine(event: Extract<ProgressEvent, {event: 'phase'}>): string {
  if (event.status === 'start') return `==> ${event.phase}`
  const elapsed = event.elapsedMs === undefined ? '' : ` in ${formatDuration(event.elapsedMs)}`
  const reason = event.reason ? ` (${event.reason})` : ''
  const error = event.error ? `: ${event.error}` : ''
  return `${event.phase} ${event.status}${elapsed}${reason}${error}`
}

/** "upload k3s …", "upload k3s done in 3.2s", "connect failed after 15.0s: …", "join skipped (…)". */
function stepLine(event: Extract<ProgressEvent, {event: 'step'}>): string {
  const elapsed = formatDuration(event.elapsedMs ?? 0)
  switch (event.status) {
    case 'start':
      return `${event.step} …`
    case 'failed':
      return `${event.step} failed after ${elapsed}: ${event.error}`
    case 'done':
      return `${event.step} done in ${elapsed}`
    case 'skipped':
      return `${event.step} skipped${event.reason ? ` (${event.reason})` : ''}`
  }
}
