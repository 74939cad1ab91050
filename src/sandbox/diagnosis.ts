import {HybridError} from '../errors.js'
import type {WorkaroundName, WorkaroundsSetting} from '../inventory/schema.js'
import type {K3sFailure} from './k3s-failure.js'
import {WORKAROUNDS} from './workarounds/index.js'

/**
 * Which blocker k3s died of, read from its last log lines: each workaround carries k3s's failure words
 * for its blocker (`failurePattern`), so the error can name the workaround that removes it.
 */

export interface Diagnosis {
  readonly workaround: WorkaroundName
  /** k3s's own words (its log line's msg="…" when it has one). */
  readonly message: string
}

/** Which blocker k3s died of: the last line of its log that a workaround's failurePattern matches. */
export function diagnose(logTail: readonly string[]): Diagnosis | undefined {
  for (const line of [...logTail].reverse()) {
    const blocker = WORKAROUNDS.find((w) => w.failurePattern?.test(line))
    if (blocker) return {workaround: blocker.id, message: k3sWords(line)}
  }
  return undefined
}

/** A logrus field's value: `key="quoted \"text\""` or `key=plain`. */
function logrusField(line: string, key: string): string | undefined {
  const match = new RegExp(`(?:^|\\s)${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|(\\S+))`).exec(line)
  if (!match) return undefined
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]
}

/**
 * k3s's own words from a log line: `time="…" level=fatal msg="Failed to start ContainerManager" err="…"`
 * → `Failed to start ContainerManager: …`; any other line as it is. Long enough for the kubelet's list of
 * six tunables.
 */
function k3sWords(line: string): string {
  const msg = logrusField(line, 'msg')
  const err = logrusField(line, 'err') ?? logrusField(line, 'error')
  const words = msg === undefined ? line.trim() : err === undefined ? msg : `${msg}: ${err}`
  return words.length > 1000 ? `${words.slice(0, 997)}...` : words
}

/** How the inventory's setting relates to the missing workaround, as the end of the sentence. */
function settingAdvice(id: WorkaroundName, setting: WorkaroundsSetting, applied: readonly string[]): string {
  if (applied.includes(id)) return `the ${id} workaround was applied, and k3s still failed`
  if (setting === 'none')
    return `the ${id} workaround removes this blocker, but spec.controlPlane.workarounds is none (auto, all, or a list that includes ${id} applies it)`
  if (Array.isArray(setting))
    return `the ${id} workaround removes this blocker, but spec.controlPlane.workarounds does not list it (add ${id})`
  return `the ${id} workaround removes this blocker, but its probe did not find it here (spec.controlPlane.workarounds: all, or a list that includes ${id}, applies it regardless)`
}

/** What the explanation reads: the inventory's setting, what was applied, where k3s's log is. */
export interface FailureSetting {
  readonly workarounds: WorkaroundsSetting
  readonly applied: readonly string[]
  readonly k3sLog: string
}

/**
 * A supervisor failure as the error the user sees: the failure's sentence, then k3s's own words and the
 * workaround that removes the blocker it died of; k3s's last lines and its log file as details.
 */
export function explainFailure(failure: K3sFailure, setting: FailureSetting): HybridError {
  const details = [...failure.logTail, `(k3s's log: ${setting.k3sLog})`]
  const diagnosis = failure.kind === 'stopped' ? undefined : diagnose(failure.logTail)
  const sentence = diagnosis
    ? `${failure.sentence}: ${diagnosis.message}; ${settingAdvice(diagnosis.workaround, setting.workarounds, setting.applied)}`
    : failure.sentence
  return new HybridError(failure.code, sentence, {details})
}
