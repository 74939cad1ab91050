import {probeLimitMs} from '../probes/time-limit.js'
import type {AppliedRecord, Workaround, WorkaroundContext} from './workaround.js'

/**
 * Most remedies are k3s settings only: applying them changes nothing on the machine, so the record is
 * empty and undo has nothing to do (the settings go with config.yaml).
 */
export function configOnly(id: Workaround['id']): Pick<Workaround, 'apply' | 'undo'> {
  return {
    apply: async (): Promise<AppliedRecord> => ({id, details: {}}),
    undo: async (): Promise<void> => {},
  }
}

/** The probe's time-limit signal; a probe called on its own (outside preflight) gets the default limit. */
export function probeSignal(ctx: WorkaroundContext): AbortSignal {
  return ctx.signal ?? AbortSignal.timeout(probeLimitMs())
}

/** A path from a record, checked to be the kind of path this workaround writes (a corrupt state file must not make undo remove anything else). */
export function recordedPath(record: AppliedRecord, key: string, mustEndWith: string): string | undefined {
  const value = record.details[key]
  if (typeof value !== 'string' || !value.startsWith('/') || !value.endsWith(mustEndWith)) return undefined
  return value
}
