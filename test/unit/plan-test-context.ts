/**
 * A PlanContext for in-process tests of the plan runner: the logger's lines and the progress events
 * are kept in arrays so tests can look at what a user would see. Not a test file.
 */
import pino from 'pino'

import {redactLine} from '../../src/log/redact.js'
import {createPlanContext, type PlanContext, type Progress, type ProgressEvent} from '../../src/plan/index.js'

export interface LogLine {
  level: number
  msg: string
  host?: string
  [key: string]: unknown
}

export interface TestContext {
  ctx: PlanContext
  lines: LogLine[]
  events: ProgressEvent[]
}

export function testContext(options: {dryRun?: boolean; concurrency?: number; signal?: AbortSignal} = {}): TestContext {
  const lines: LogLine[] = []
  const events: ProgressEvent[] = []
  // The same redaction hook as createLogger, so tests see what the sinks would get.
  const logger = pino(
    {level: 'debug', hooks: {streamWrite: redactLine}},
    {write: (line: string) => void lines.push(JSON.parse(line) as LogLine)},
  )
  const progress: Progress = {mode: 'plain', report: (event) => void events.push(event), close: () => {}}
  return {ctx: createPlanContext({logger, progress, ...options}), lines, events}
}

/** Milliseconds since `t0`, for timelines. */
export function since(t0: number): number {
  return Date.now() - t0
}
