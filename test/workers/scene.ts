import {run, RUN_JS, type RunResult} from '../system/cluster-fixture.js'

/**
 * What the worker scenes share (each test file in this folder brings up a cluster with the k3s stand-in
 * on lab hosts of its own): running hybrid in the scene's environment, waiting for a condition, and
 * reading what `--json` printed.
 */

/** `node bin/run.js ARGS…` in the scene's environment; a join of a few lab workers on a loaded machine takes minutes. */
export function hybrid(
  scene: {readonly env: NodeJS.ProcessEnv},
  args: string[],
  timeoutMs = 240_000,
): Promise<RunResult> {
  return run(process.execPath, [RUN_JS, ...args], {env: scene.env, timeoutMs})
}

/** `check`'s first defined value, asked every 250 ms; an error naming `what` after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** `up --json` streams progress events, one JSON object a line, then its document (indented): the last that parses. */
export function lastJson(stdout: string): unknown {
  const lines = stdout.trimEnd().split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].startsWith('{')) continue
    try {
      return JSON.parse(lines.slice(i).join('\n'))
    } catch {
      // not the document's first line
    }
  }
  throw new Error(`no JSON document in:\n${stdout}`)
}

/** The progress events `--json` printed so far, one JSON object a line. */
export function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{"'))
    .flatMap((line) => {
      try {
        const value = JSON.parse(line) as Record<string, unknown>
        return typeof value.event === 'string' ? [value] : []
      } catch {
        return [] // a line of the indented document, or one cut short
      }
    })
}
