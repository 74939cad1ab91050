import {spawn} from 'node:child_process'

/**
 * Probes run small system tools (mount, ip, iptables, unshare). Each runs in its own process group, so
 * when the probe's time limit fires the whole group (unshare → sh → ip) is killed, not just the first
 * process; the result never throws: a missing tool or a failure is data the probe reports.
 */
export interface ToolResult {
  /** Exit status 0. */
  readonly ok: boolean
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** The tool could not be started (ENOENT: not installed). */
  readonly spawnError?: string
  /** Killed at the time limit. */
  readonly aborted: boolean
}

export interface ToolOptions {
  readonly signal?: AbortSignal
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
}

const OUTPUT_CAP = 64 * 1024

export function runTool(file: string, args: readonly string[], options: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      resolve({ok: false, code: null, signal: null, stdout: '', stderr: '', aborted: true})
      return
    }
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: options.env ?? process.env,
      cwd: options.cwd,
    })
    let stdout = ''
    let stderr = ''
    let aborted = false
    let spawnError: string | undefined
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(0, OUTPUT_CAP)))
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(0, OUTPUT_CAP)))
    const onAbort = (): void => {
      aborted = true
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    options.signal?.addEventListener('abort', onAbort, {once: true})
    child.on('error', (error: NodeJS.ErrnoException) => (spawnError = error.code ?? error.message))
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort)
      resolve({
        ok: code === 0 && !spawnError,
        code,
        signal,
        stdout,
        stderr,
        aborted,
        ...(spawnError ? {spawnError} : {}),
      })
    })
  })
}

/** The tool's own words for a failure: its first non-empty stderr line, else its exit status. */
export function toolFailure(result: ToolResult, tool: string): string {
  if (result.spawnError === 'ENOENT') return `${tool} is not installed`
  if (result.spawnError) return `${tool} could not start (${result.spawnError})`
  if (result.aborted) return `${tool} was stopped at the time limit`
  const line = firstLine(result.stderr) || firstLine(result.stdout)
  if (line) return line
  return result.signal ? `${tool} killed by ${result.signal}` : `${tool} exited with status ${result.code}`
}

/** Tools put the error first and hints after it ("Perhaps iptables or your kernel needs to be upgraded."). */
export function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  )
}

/** One word for sh, whatever it contains. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}
