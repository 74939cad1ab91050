import {type ChildProcess, spawn} from 'node:child_process'
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {CoreV1Api, KubeConfig} from '@kubernetes/client-node'

import {freePort} from '../helpers/free-port.js'
import {apiServerUrl} from '../../src/agent/agent-config.js'
import {SshConnections} from '../../src/remote/connections.js'
import {createLab, type Lab, type LabHost, type LabHostSpec} from '../helpers/lab.js'
import {STANDIN} from '../system/cluster-fixture.js'

/**
 * The k3s stand-in (a test fixture, not k3s) as an agentless `k3s server` on this machine, bound on the
 * lab's bridge address, so lab hosts reach it directly (direct mode). Stopped through its own child handle.
 */
export interface LabServer {
  /** https://<bridge>:<port> */
  readonly url: string
  readonly address: string
  readonly port: number
  /** The cluster token (K10<CA hash>::server:<secret>). */
  readonly token: string
  readonly api: CoreV1Api
  output(): string
  stop(): Promise<void>
}

/** The machine's address on the lab's bridge (x.y.z.1 of its subnet). */
export function bridgeAddress(lab: Lab): string {
  return lab.subnet.replace(/\.0\/24$/, '.1')
}

export async function startLabServer(lab: Lab, dir: string, port?: number): Promise<LabServer> {
  const address = bridgeAddress(lab)
  // A free port on loopback is free on the bridge address too: nothing here binds the lab's addresses.
  const listen = port ?? (await freePort())
  const kubeconfig = join(dir, 'kubeconfig.yaml')
  const dataDir = join(dir, 'server')
  const child: ChildProcess = spawn(
    STANDIN,
    [
      'server',
      '--disable-agent',
      '--data-dir',
      dataDir,
      '--bind-address',
      address,
      '--advertise-address',
      address,
      '--https-listen-port',
      String(listen),
      '--write-kubeconfig',
      kubeconfig,
    ],
    {stdio: ['ignore', 'pipe', 'pipe']},
  )
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()))
  const deadline = Date.now() + 30_000
  while (!out.includes('k3s is up and running')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`the stand-in server did not start:\n${out}`)
    }
    await sleep(100)
  }
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  return {
    url: apiServerUrl(address, listen),
    address,
    port: listen,
    token: (await readFile(join(dataDir, 'server', 'token'), 'utf8')).trim(),
    api: kc.makeApiClient(CoreV1Api),
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await Promise.race([exited, sleep(10_000)])
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
      await exited
    },
  }
}

/** One lab host `w1` (with `users`), `servers` stand-in servers on the lab's bridge, and SSH connections to reach it. */
export interface AgentLab {
  readonly lab: Lab
  readonly w1: LabHost
  readonly servers: readonly LabServer[]
  readonly connections: SshConnections
  /** Connections, servers, the lab and the temp dir, in that order; also after a failed test. */
  destroy(): Promise<void>
}

export async function createAgentLab(
  options: {servers?: number; users?: LabHostSpec['users']} = {},
): Promise<AgentLab> {
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-agent-'))
  const connections = new SshConnections()
  const started: LabServer[] = []
  let lab: Lab | undefined
  const destroy = async () => {
    await connections.closeAll()
    await Promise.all(started.map((server) => server.stop()))
    await lab?.destroy()
    await rm(dir, {recursive: true, force: true})
  }
  try {
    lab = await createLab({hosts: [{name: 'w1', users: options.users}]})
    for (let i = 0; i < (options.servers ?? 1); i++) {
      const serverDir = join(dir, `server-${i}`)
      await mkdir(serverDir)
      started.push(await startLabServer(lab, serverDir))
    }
    return {lab, w1: lab.host('w1'), servers: started, connections, destroy}
  } catch (error) {
    await destroy()
    throw error
  }
}
