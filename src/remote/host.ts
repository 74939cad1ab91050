import type {HostFacts} from './facts.js'
import type {SudoResolution} from './sudo.js'

/**
 * The one surface every step runs against, on the sandbox's own machine (LocalHost) or on a worker
 * over SSH (SshHost). A step that only talks to a Host can be tested with a fake one.
 */
export interface Host {
  /** The worker's name, or "local". Error messages start with it. */
  readonly name: string
  /** Run `argv` (never a shell string: arguments are quoted for the remote shell by the Host). */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>
  /** Like run, but a non-zero exit becomes a RemoteError naming the host, the program and its stderr. */
  check(argv: readonly string[], options?: RunOptions): Promise<RunResult>
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string, options?: {sudo?: boolean}): Promise<Buffer | undefined>
  /**
   * Write a file whole: into a temp name beside it, created with `mode` (so a secret is never readable
   * by others, not even for a moment), owner set, then renamed over `path`.
   */
  writeFile(path: string, data: string | Uint8Array, options: WriteOptions): Promise<void>
  /**
   * Copy a local file to `path` the same way (temp name, then rename), checking its sha256 on the
   * host; nothing is sent when the file there already has that digest.
   */
  upload(localPath: string, path: string, options: UploadOptions): Promise<UploadResult>
  /** What lies at `path` (lstat: a symlink is reported as one), or undefined when nothing does. */
  stat(path: string, options?: {sudo?: boolean}): Promise<FileStat | undefined>
  /** How the login user becomes root (probed once, read-only). */
  privilege(): Promise<SudoResolution>
  /** Gathered once per Host and kept (docs/architecture.md, "Workers": OS, arch, init, k3s, ports, sshd, sudo). */
  facts(options: FactsOptions): Promise<HostFacts>
  /** Let go of the host (an SSH host closes its connection; later calls reconnect nothing and fail). */
  close(): Promise<void>
}

export interface RunOptions {
  /** Bytes for the command's standard input (closed after them). */
  readonly stdin?: string | Uint8Array
  /** Run as root: through sudo unless the login user is root (the worker's ssh.sudo decides how). */
  readonly sudo?: boolean
  /** A deadline of its own (e.g. `status`, which must answer quickly); else the host's ssh.commandTimeoutSeconds. */
  readonly timeoutSeconds?: number
  /**
   * Keep the command's standard input open until it exits, so that its end tells the command the run that
   * started it is gone (killed, or its connection lost): for programs that must not finish a change alone.
   */
  readonly lifeline?: boolean
}

export interface RunResult {
  /** null when the command was ended by a signal. */
  readonly exitCode: number | null
  readonly signal?: string
  readonly stdout: string
  readonly stderr: string
}

export interface WriteOptions {
  /** Permission bits, e.g. 0o600 for a token. */
  readonly mode: number
  /** "user" or "user:group"; unchanged (the writer's) when absent. */
  readonly owner?: string
  readonly sudo?: boolean
}

export interface UploadOptions extends WriteOptions {
  /** Bytes sent so far and the total, as the upload goes. */
  readonly onProgress?: (done: number, total: number) => void
  /** The local file's sha256 when the caller knows it (one binary sent to many hosts is hashed once). */
  readonly sha256?: string
  /** The sha256 of what is at the path on the host as the caller just read it (null: nothing there). */
  readonly sha256There?: string | null
  /**
   * The local file's bytes when the caller holds them: one binary sent to many hosts is read from disk
   * once, not once per host. Asked for only when the bytes are to be sent.
   */
  readonly contents?: () => Promise<Buffer>
}

export interface UploadResult {
  /** True when the file there already had the digest and nothing was sent. */
  readonly skipped: boolean
  readonly bytes: number
  readonly sha256: string
}

export interface FileStat {
  readonly type: 'file' | 'directory' | 'symlink' | 'other'
  readonly size: number
  /** Permission bits (mode & 0o7777). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
}

/** What facts depend on besides the host itself (from the inventory). */
export interface FactsOptions {
  /** Tunnel mode: the address the API is advertised on and must be bindable on the worker. */
  readonly advertiseAddress?: string
  readonly apiPort?: number
}
