import {redactValue} from '../log/redact.js'
import type {PlanResult} from './runner.js'

/** The JSON document of a run (what --json prints as its result): no thrown objects, redacted. */
export function summaryJson(result: PlanResult): Record<string, unknown> {
  const {failure, ...rest} = result
  return redactValue({
    ...rest,
    ...(failure ? {failure: {phase: failure.phase, message: failure.message, details: failure.details}} : {}),
  })
}
