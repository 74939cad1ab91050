/**
 * How long one remote command or upload may take, and how much a command may print, before hybrid
 * stops it and fails that worker with a sentence (spec.ssh, overridable per worker). A worker whose
 * login hangs (PAM, a hung home directory, a stopped shell) or whose command prints without end then
 * costs one deadline, never the whole run.
 */
export interface RemoteLimits {
  readonly commandTimeoutSeconds: number
  readonly uploadTimeoutSeconds: number
  readonly outputLimitBytes: number
}

/**
 * The defaults: a command is a handful of coreutils and systemctl calls (systemd's own stop timeout is
 * 90 s); an upload is k3s's ~70 MiB binary, which even a slow link moves in half an hour; no command
 * hybrid runs prints more than a few KiB.
 */
export const DEFAULT_REMOTE_LIMITS: RemoteLimits = {
  commandTimeoutSeconds: 120,
  uploadTimeoutSeconds: 1800,
  outputLimitBytes: 16 * 1024 * 1024,
}

/** The limits of a worker's SSH settings; a record written before they existed gets the defaults. */
export function remoteLimits(ssh: Partial<RemoteLimits>): RemoteLimits {
  return {
    commandTimeoutSeconds: ssh.commandTimeoutSeconds ?? DEFAULT_REMOTE_LIMITS.commandTimeoutSeconds,
    uploadTimeoutSeconds: ssh.uploadTimeoutSeconds ?? DEFAULT_REMOTE_LIMITS.uploadTimeoutSeconds,
    outputLimitBytes: ssh.outputLimitBytes ?? DEFAULT_REMOTE_LIMITS.outputLimitBytes,
  }
}
