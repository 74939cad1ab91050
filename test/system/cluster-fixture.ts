import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

/**
 * One throwaway cluster for a test: its own state, cache and data dirs under one temp dir, an inventory
 * that uses the k3s stand-in, and a free API port. Everything it starts is found again through the pids
 * the test recorded (checked against /proc/PID/cmdline), never by name.
 */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url))
export const RUN_JS = join(REPO, 'bin', 'run.js')
export const STANDIN = join(REPO, 'test', 'k3s-standin', 'k3s')

export interface ClusterFixture {
  readonly dir: string
  readonly name: string
  readonly stateDir: string
  readonly dataDir: string
  readonly inventory: string
  readonly apiPort: number
  /** HYBRID_STATE_DIR and HYBRID_CACHE_DIR for this fixture, over the test's environment. */
  readonly env: NodeJS.ProcessEnv
  /** Processes seen during the test (supervisor, k3s), killed in cleanup if still theirs. */
  readonly pids: Set<number>
}

export interface FixtureOptions {
  agent?: boolean
  workarounds?: string
  /** Default <dir>/data. */
  dataDir?: (dir: string) => string
  binary?: (dir: string) => string
  extraArgs?: string[]
}

/** A port nothing listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

export async function makeFixture(options: FixtureOptions = {}): Promise<ClusterFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-cp-'))
  const name = 'lab'
  const apiPort = await freePort()
  const dataDir = options.dataDir?.(dir) ?? join(dir, 'data')
  const inventory = join(dir, 'lab.yaml')
  await writeFile(
    inventory,
    `apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec:
  k3s: {version: v1.34.1+k3s1, binary: ${JSON.stringify(options.binary?.(dir) ?? STANDIN)}}
  token: {file: ${JSON.stringify(join(dir, 'lab.token'))}}
  controlPlane:
    dataDir: ${JSON.stringify(dataDir)}
    agent: ${options.agent ?? false}
    workarounds: ${options.workarounds ?? 'auto'}
    apiPort: ${apiPort}
    extraArgs: ${JSON.stringify(options.extraArgs ?? [])}
  workers: []
`,
  )
  const stateDir = join(dir, 'state')
  return {
    dir,
    name,
    stateDir,
    dataDir,
    inventory,
    apiPort,
    env: fixtureEnv(dir),
    pids: new Set(),
  }
}

/** The test's environment with HYBRID_STATE_DIR and HYBRID_CACHE_DIR in `dir` (state/, cache/), and `extra`. */
export function fixtureEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache'), ...extra}
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** `node bin/run.js ARGS…` with the fixture's environment. */
export function hybrid(
  fixture: ClusterFixture,
  args: string[],
  options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<RunResult> {
  return run(process.execPath, [RUN_JS, ...args], {env: {...fixture.env, ...options.env}, timeoutMs: options.timeoutMs})
}

export function run(
  file: string,
  args: string[],
  options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    })
  })
}

/** `kubectl --kubeconfig <the cluster's> ARGS…`: its output, or an assertion naming what kubectl said. */
export async function kubectl(
  cluster: {readonly kubeconfig: string},
  args: string[],
  timeoutMs = 30_000,
): Promise<string> {
  const result = await run('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args], {timeoutMs})
  assert.equal(result.code, 0, result.stderr)
  return result.stdout
}

export interface NodeSeen {
  readonly ready: boolean
  readonly labels: Record<string, string>
  /** "key=value:Effect", as k3s's --node-taint writes them. */
  readonly taints: string[]
}

/** Every Node of the cluster by name, as `kubectl get nodes -o json` shows it. */
export async function nodes(cluster: {readonly kubeconfig: string}): Promise<Map<string, NodeSeen>> {
  const list = JSON.parse(await kubectl(cluster, ['get', 'nodes', '-o', 'json'])) as {
    items: Array<{
      metadata: {name: string; labels: Record<string, string>}
      spec: {taints?: Array<{key: string; value?: string; effect: string}>}
      status: {conditions?: Array<{type: string; status: string}>}
    }>
  }
  return new Map(
    list.items.map((n) => [
      n.metadata.name,
      {
        ready: n.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
        labels: n.metadata.labels,
        taints: (n.spec.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`),
      },
    ]),
  )
}

/**
 * The one-sentence error of a failed command: its stderr's only line that starts with "hybrid: " (the
 * progress lines before it are log lines), which must also be the last line.
 */
export function errorSentence(stderr: string): string {
  const lines = stderr.trimEnd().split('\n')
  const sentences = lines.filter((line) => line.startsWith('hybrid: '))
  if (sentences.length !== 1 || lines.at(-1) !== sentences[0])
    throw new Error(`expected exactly one "hybrid: " line, last, in:\n${stderr}`)
  return sentences[0]
}

/** The state file as JSON (undefined when there is none). */
export async function readStateFile(fixture: ClusterFixture): Promise<Record<string, any> | undefined> {
  try {
    return JSON.parse(await readFile(join(fixture.stateDir, 'clusters', fixture.name, 'state.json'), 'utf8'))
  } catch {
    return undefined
  }
}

/** Remember the supervisor's and k3s's pids from the state, for the assertions and for cleanup. */
export async function recordPids(fixture: ClusterFixture): Promise<{supervisor?: number; k3s?: number}> {
  const state = await readStateFile(fixture)
  const supervisor = state?.supervisor?.pid as number | undefined
  const k3s = state?.k3s?.pid as number | undefined
  for (const pid of [supervisor, k3s]) if (pid && pid !== process.pid) fixture.pids.add(pid)
  return {supervisor, k3s}
}

/** The process's command line, or undefined when it is gone (or a zombie). */
export async function cmdline(pid: number): Promise<string | undefined> {
  try {
    const text = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim()
    return text === '' ? undefined : text
  } catch {
    return undefined
  }
}

/** Is `pid` still one of this fixture's processes (its command line names the fixture's temp dir)? */
export async function isFixtureProcess(fixture: ClusterFixture, pid: number): Promise<boolean> {
  const line = await cmdline(pid)
  return line !== undefined && line.includes(fixture.dir)
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(200)
  }
}

/** After each test: `hybrid down`, then SIGKILL to any recorded pid still the fixture's, then the temp dir. */
export async function cleanupFixture(fixture: ClusterFixture | undefined): Promise<void> {
  if (!fixture) return
  await recordPids(fixture)
  await hybrid(fixture, ['down', '--inventory', fixture.inventory], {timeoutMs: 60_000}).catch(() => undefined)
  for (const pid of fixture.pids) {
    if (await isFixtureProcess(fixture, pid)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
  }
  await rm(fixture.dir, {recursive: true, force: true})
}
