import {type ChildProcess, spawn} from 'node:child_process'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runInGvisor} from '../../helpers/gvisor.js'

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url))
export const HYBRID = join(REPO, 'bin', 'run.js')

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface StartedHybrid {
  child: ChildProcess
  /** Resolves once stdout has contained `text`. */
  waitForStdout(text: string): Promise<void>
  result: Promise<RunResult>
}

/** Start `hybrid ARGS…` (the real CLI, as users run it) with output collected. */
export function startHybrid(
  args: string[],
  options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): StartedHybrid {
  const child = spawn(process.execPath, [HYBRID, ...args], {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const watchers: Array<{text: string; resolve: () => void}> = []
  child.stdout.on('data', (d) => {
    stdout += d
    for (const w of watchers.filter((w) => stdout.includes(w.text))) w.resolve()
  })
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const result = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    })
  })
  const waitForStdout = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (stdout.includes(text)) return resolve()
      watchers.push({text, resolve})
      void result.then(() =>
        reject(new Error(`hybrid ended before printing ${JSON.stringify(text)}; stdout: ${stdout}; stderr: ${stderr}`)),
      )
    })
  return {child, waitForStdout, result}
}

export function runHybrid(
  args: string[],
  options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<RunResult> {
  return startHybrid(args, options).result
}

/** `hybrid ARGS…` inside a fresh gVisor sandbox (runsc), run from the repository. */
export function runHybridInGvisor(args: string[], timeoutMs = 180_000): Promise<RunResult> {
  return runInGvisor([process.execPath, HYBRID, ...args], {cwd: REPO, timeoutMs})
}

/** The lines hybrid itself wrote to stderr (its errors start with "hybrid:"). */
export function hybridErrorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('hybrid:'))
}

/** The JSON document `--json` writes at the end of stderr. */
export function trailingJson(stderr: string): any {
  const start = stderr.lastIndexOf('\n{\n') >= 0 ? stderr.lastIndexOf('\n{\n') + 1 : stderr.indexOf('{\n')
  return JSON.parse(stderr.slice(start))
}
