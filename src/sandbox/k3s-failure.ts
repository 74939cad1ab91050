import {HybridError} from '../errors.js'
import {tailLines} from '../util/log-tail.js'
import type {K3sExit} from './k3s-process.js'
import type {RestartPolicy} from './restart-policy.js'

/**
 * Why k3s ended for good, in one sentence for the user, with k3s's own last words for the details
 * (diagnosis.ts turns it into the error `up` prints, naming the workaround that would help).
 */

/** The failure as data: what the detached supervisor sends its parent over IPC. */
export interface K3sFailureData {
  /** died: exited before becoming ready; timeout: never became ready; gave-up: the restart limit; stopped: stop() before ready. */
  readonly kind: 'died' | 'timeout' | 'gave-up' | 'stopped'
  readonly sentence: string
  /** k3s's exit code and signal (both null: it could not be started, or is still running). */
  readonly exitCode: number | null
  readonly signal: string | null
  /** The last lines of k3s's log. */
  readonly logTail: readonly string[]
}

/** What the supervisor's `ready` rejects with, and `done` resolves with when it gives up. */
export class K3sFailure extends HybridError implements K3sFailureData {
  readonly kind: K3sFailureData['kind']
  readonly sentence: string
  readonly k3sExitCode: number | null
  readonly signal: string | null
  readonly logTail: readonly string[]

  constructor(data: K3sFailureData) {
    super(data.kind === 'gave-up' ? 'K3S_DIED' : 'K3S_START_FAILED', data.sentence, {details: data.logTail})
    this.name = 'K3sFailure'
    this.kind = data.kind
    this.sentence = data.sentence
    this.k3sExitCode = data.exitCode
    this.signal = data.signal
    this.logTail = data.logTail
  }

  /** Plain data, for IPC (an Error does not survive serialisation). */
  toData(): K3sFailureData {
    const {kind, sentence, k3sExitCode: exitCode, signal, logTail} = this
    return {kind, sentence, exitCode, signal, logTail}
  }
}

const LOG_TAIL_LINES = 10

/** stop() came before k3s was ready: what `ready` rejects with. */
export function stoppedBeforeReady(): K3sFailure {
  return new K3sFailure({
    kind: 'stopped',
    sentence: 'k3s server was stopped before it became ready',
    exitCode: null,
    signal: null,
    logTail: [],
  })
}

/**
 * The failure of a given kind. `cause`: for `timeout`, the readiness wait's error; for a k3s that could
 * not be started at all (exit code and signal both null), the launch error.
 */
export async function k3sFailure(
  kind: Exclude<K3sFailure['kind'], 'stopped'>,
  exit: K3sExit,
  policy: RestartPolicy,
  logFile: string,
  cause?: unknown,
): Promise<K3sFailure> {
  const logTail = await tailLines(logFile, LOG_TAIL_LINES)
  const sentence = failureSentence(kind, exit, policy, cause)
  return new K3sFailure({kind, sentence, exitCode: exit.code, signal: exit.signal, logTail})
}

/** The one sentence: how k3s ended, and what the supervisor concluded. */
export function failureSentence(
  kind: Exclude<K3sFailure['kind'], 'stopped'>,
  exit: K3sExit,
  policy: RestartPolicy,
  cause?: unknown,
): string {
  const how = exit.signal
    ? `was killed by ${exit.signal}`
    : exit.code === null
      ? 'could not be started'
      : `exited with code ${exit.code}`
  if (kind === 'gave-up') {
    const minutes = Math.round(policy.windowMs / 60_000)
    return `k3s server died ${policy.limit + 1} times within ${minutes} minute${minutes === 1 ? '' : 's'} (last time it ${how}); hybrid stopped restarting it`
  }
  if (kind === 'timeout')
    return `k3s server did not become ready: ${cause instanceof Error ? cause.message : 'timed out'}`
  if (exit.code === null && exit.signal === null && cause instanceof Error)
    return `k3s server could not be started: ${cause.message.replace(/\.$/, '')}`
  return `k3s server ${how} before becoming ready`
}
