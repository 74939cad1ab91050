/**
 * The one error model (docs/architecture.md, "Errors"): every failure a user can act on is a HybridError
 * with a stable machine-readable `code` (what `--json` errors carry, and what scripts may match on), an
 * exit code, and one sentence. Commands print the sentence and exit; never a stack trace.
 */

/** 0 done; 1 failed; 2 bad usage or bad inventory; 3 partly done (some hosts failed; a re-run resumes). */
export type ExitCode = 0 | 1 | 2 | 3

/** Stable codes, grouped by what failed. Add one here when a new kind of failure appears; never rename one. */
export const ERROR_CODES = [
  // the command line and the inventory (exit 2)
  'USAGE',
  'INVENTORY_NOT_FOUND',
  'INVENTORY_UNREADABLE',
  'INVENTORY_INVALID',
  'TOKEN_ENV_UNSET',
  // the cluster's recorded state
  'NO_CLUSTER',
  'CLUSTER_NOT_UP',
  'CLUSTER_BUSY',
  'CLUSTER_LOCKED',
  'CLUSTER_GONE',
  'CLUSTER_NOT_WAITING',
  'CLUSTER_SETTINGS_CHANGED',
  'CLUSTER_ELSEWHERE',
  'STATE_UNREADABLE',
  'STATE_INVALID',
  'STATE_VERSION_UNKNOWN',
  'DATA_DIR_NOT_WRITABLE',
  'TOKEN_UNREADABLE',
  'AGENT_TOKEN_MISSING',
  // preflight, workarounds, the interceptor
  'PREFLIGHT_BLOCKED',
  'WORKAROUND_UNKNOWN',
  'WORKAROUND_FAILED',
  'UNDO_FAILED',
  'INTERCEPTOR_UNAVAILABLE',
  'INTERCEPTOR_NOT_BUILT',
  'INTERCEPTOR_START_FAILED',
  'COMMAND_EXEC_FAILED',
  // k3s
  'K3S_BINARY_UNAVAILABLE',
  'K3S_BINARY_INVALID',
  'K3S_CHECKSUM_MISMATCH',
  'K3S_ARCH_UNSUPPORTED',
  'K3S_CACHE_NOT_WRITABLE',
  'K3S_START_FAILED',
  'K3S_DIED',
  'K3S_DOWNGRADE_REFUSED',
  'K3S_UPGRADE_FAILED',
  'K3S_STOP_FAILED',
  // workers over SSH (src/remote/errors.ts says what each means)
  'SSH_TIMEOUT',
  'SSH_REFUSED',
  'SSH_UNREACHABLE',
  'SSH_PROXY_REFUSED',
  'SSH_BASTION_FAILED',
  'SSH_HOST_KEY_UNKNOWN',
  'SSH_HOST_KEY_CHANGED',
  'SSH_AUTH_REFUSED',
  'SSH_NO_KEY',
  'SSH_CONNECTION_LOST',
  'SUDO_UNAVAILABLE',
  'REMOTE_COMMAND_FAILED',
  'REMOTE_COMMAND_TIMEOUT',
  'REMOTE_OUTPUT_LIMIT',
  'STEP_TIMEOUT',
  'UPLOAD_FAILED',
  'WORKERS_NOT_READY',
  'WORKER_UNKNOWN',
  'TUNNEL_DOWN',
  'API_CHECK_FAILED',
  'AGENT_START_FAILED',
  'AGENT_UNINSTALL_FAILED',
  'AGENT_FILE_UNREADABLE',
  'AGENT_FILE_FOREIGN',
  'NODE_NOT_WORKERS',
  // the API and kubeconfigs
  'KUBECONFIG_INVALID',
  'KUBECONFIG_UNREADABLE',
  'KUBE_API_FAILED',
  'KUBE_APPLY_FAILED',
  'KUBE_DELETE_FAILED',
  'DRAIN_BLOCKED',
  'TIMEOUT',
  // snapshots of the control plane
  'SNAPSHOT_REFUSED',
  'SNAPSHOT_FAILED',
  'SNAPSHOT_NOT_FOUND',
  'SNAPSHOT_NOT_CONFIGURED',
  // a run as a whole
  'INTERRUPTED',
  'PARTLY_DONE',
  'INTERNAL',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export interface ErrorOptions {
  /** Default 1 (failed). */
  readonly exitCode?: ExitCode
  /** Lines printed indented under the sentence (k3s's last log lines, every inventory problem, …). */
  readonly details?: readonly string[]
  readonly cause?: unknown
}

/** An error a user can act on: a stable code, one sentence, its exit code, and optional detail lines. */
export class HybridError extends Error {
  readonly exitCode: ExitCode
  readonly details: readonly string[]

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'HybridError'
    this.exitCode = options.exitCode ?? 1
    this.details = options.details ?? []
  }

  /** The `error` object `--json` prints; subclasses add their data (an inventory's problems with positions). */
  toJSON(): Record<string, unknown> {
    return {code: this.code, message: this.message, exitCode: this.exitCode, details: this.details}
  }

  /** The whole JSON document `--json` prints when the command fails with this error. */
  jsonDocument(): Record<string, unknown> {
    return {error: this.toJSON()}
  }
}

/** Bad flags, bad arguments, a bad file given on the command line: exit 2. */
export class UsageError extends HybridError {
  constructor(message: string, details: readonly string[] = [], code: ErrorCode = 'USAGE') {
    super(code, message, {exitCode: 2, details})
    this.name = 'UsageError'
  }
}

/** A message for any thrown value, for the one-sentence error line. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}

/** The exit code of any thrown value: a HybridError's own, else 1. */
export function exitCodeOfError(error: unknown): ExitCode {
  return error instanceof HybridError ? error.exitCode : 1
}
