import {type ChildProcess, spawn} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {join} from 'node:path'

import {freePort} from './free-port.js'

/**
 * A real HTTP proxy for tests: Debian's tinyproxy in the foreground (`tinyproxy -d -c FILE`) on
 * 127.0.0.1 with its own config and log in the test's temp dir. `connectPorts` limits CONNECT to those
 * ports, so a tunnel to any other port is refused with 403, as sandbox proxies refuse GitHub's storage.
 * `allowHosts` lets requests through to those hosts only (tinyproxy's filter, default deny): any other
 * host is answered `403 Filtered`, as an egress proxy that allows a list of destinations answers.
 */
export interface TinyproxyOptions {
  connectPorts?: number[]
  allowHosts?: string[]
}

export interface Tinyproxy {
  url: string
  /** The CONNECT requests tinyproxy logged, e.g. `127.0.0.1:5000`, and those it refused (by port). */
  connects(): Promise<string[]>
  refusedPorts(): Promise<number[]>
  close(): Promise<void>
}

export async function startTinyproxy(dir: string, options: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const port = await freePort()
  const logFile = join(dir, `tinyproxy-${port}.log`)
  const config = join(dir, `tinyproxy-${port}.conf`)
  const filter = join(dir, `tinyproxy-${port}.filter`)
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 50',
    'Allow 127.0.0.1',
    ...(options.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
  ]
  if (options.allowHosts) {
    const exact = (host: string) => `^${host.replace(/[.[\]()*+?{}|^$\\]/g, '\\$&')}$`
    await writeFile(filter, options.allowHosts.map((host) => `${exact(host)}\n`).join(''))
    lines.push(`Filter "${filter}"`, 'FilterType ere', 'FilterDefaultDeny Yes', 'FilterCaseSensitive Yes')
  }
  await writeFile(config, `${lines.join('\n')}\n`)
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', config], {stdio: 'ignore'})
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
  try {
    await waitForPort(port, child)
  } catch (error) {
    await close()
    throw error
  }
  const log = () => readFile(logFile, 'utf8').catch(() => '')
  return {
    url: `http://127.0.0.1:${port}`,
    async connects() {
      return [...(await log()).matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((m) => m[1])
    },
    async refusedPorts() {
      return [...(await log()).matchAll(/Refused CONNECT method on port (\d+)/g)].map((m) => Number(m[1]))
    },
    close,
  }
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited with ${child.exitCode}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('tinyproxy did not listen within 10 s')
}
