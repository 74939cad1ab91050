import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {KubeConfig} from '@kubernetes/client-node'

import {freePort} from './free-port.js'
import {saveMachineSysctls} from './machine-sysctls.js'

/**
 * A k3s stand-in server (test/k3s-standin/k3s, a test fixture, not k3s) on 127.0.0.1 with a free port and
 * a temp data dir, for tests that talk to an API. `stop()` kills the process it started (by its own
 * handle), removes the temp dir and, since the stand-in's agent writes the kubelet's /proc/sys tunables
 * machine-wide when it runs on the host, puts back the ones it changed; safe to call twice.
 */
export const STANDIN = fileURLToPath(new URL('../../../test/k3s-standin/k3s', import.meta.url))

export interface StandinServer {
  readonly port: number
  readonly kubeconfig: string
  readonly kc: KubeConfig
  /** What the server printed so far (for a failing test's message). */
  output(): string
  stop(): Promise<void>
}

export async function startStandinServer(extra: readonly string[] = [], timeoutMs = 20_000): Promise<StandinServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-standin-'))
  const port = await freePort()
  const kubeconfig = join(dir, 'kubeconfig.yaml')
  const restoreSysctls = await saveMachineSysctls()
  const args = ['server', '--data-dir', join(dir, 'data'), '--https-listen-port', String(port)]
  args.push('--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--write-kubeconfig', kubeconfig)
  const child = spawn(STANDIN, [...args, ...extra], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await rm(dir, {recursive: true, force: true})
    await restoreSysctls()
  }
  try {
    await waitUp(child, () => out, timeoutMs)
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfig)
    return {port, kubeconfig, kc, output: () => out, stop}
  } catch (error) {
    await stop()
    throw error
  }
}

async function waitUp(child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!/k3s is up and running/.test(output())) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline)
      throw new Error(`the k3s stand-in server did not come up:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
