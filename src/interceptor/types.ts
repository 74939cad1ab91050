/**
 * The interceptor's data: rules that redirect paths, how to spawn a command under them, and
 * what a running command reports. The control-plane supervisor codes against exactly these names.
 */

/** `missing`: redirect only when the real path does not exist; `always`: every matching access. */
export type RuleMode = 'missing' | 'always'

/**
 * Redirect `from` to `to` (both absolute). A directory rule redirects every path below `from` (not
 * `from` itself); a file rule redirects exactly that file, and the target must have the same file
 * name. A relative path is matched as the directory it is resolved in (the working directory, or an
 * *at call's descriptor) joined with it. Not redirected: a path with a `..` component (the kernel
 * resolves it after following symlinks), and a relative path whose remainder below `from` begins in
 * that directory rather than in the path itself (the redirect points into the caller's own string).
 */
export interface Rule {
  from: string
  to: string
  mode: RuleMode
}

export interface InterceptOptions {
  rules: Rule[]
  /** The command's environment; default: this process's. */
  env?: NodeJS.ProcessEnv
  /** The command's working directory; default: this process's. */
  cwd?: string
  /** Descriptors that become the command's 0, 1 and 2; default: this process's own 0, 1, 2. */
  stdio?: [number, number, number]
}

export interface InterceptCounters {
  /** ptrace stops served (seccomp stops for path syscalls, signals, clone/exec events). */
  stops: number
  /** Path syscalls seen, by name. */
  syscalls: Record<string, number>
  /** Accesses redirected, by the rule's `from` path. */
  rewrites: Record<string, number>
  /**
   * Accesses that matched a rule but went to the real path, by `from` path: the process had closed (or
   * replaced) the descriptor of the rule's target the interceptor hands down, or a relative path's
   * remainder began in its base directory (see Rule). Under '(path unreadable)': calls whose path the
   * interceptor could not read from the process's memory; they fail with EFAULT, as the kernel's own
   * read of it would, and never reach the real path.
   */
  missed: Record<string, number>
  /** Signals passed on to tracees (Go's SIGURG preemption signals included). */
  signals: number
  /** Traced threads and processes alive now. */
  tracees: number
}

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface InterceptedProcess {
  readonly pid: number
  /** Settles when the command itself exits (its descendants may still run, still traced). */
  readonly exited: Promise<ExitStatus>
  /**
   * Settles when no traced process is left: the command and everything it started. Until then the
   * rules' targets must stay; processes left running need this process (their tracer) alive, and
   * end with it (PTRACE_O_EXITKILL).
   */
  readonly finished: Promise<void>
  /** Signal the command (default SIGTERM); does nothing once it has exited. */
  kill(signal?: NodeJS.Signals): void
  /**
   * Signal every traced process still alive: the command and everything it started (default SIGTERM).
   * Returns how many processes were signalled: 0 once none is left.
   */
  killAll(signal?: NodeJS.Signals): number
  counters(): InterceptCounters
}
