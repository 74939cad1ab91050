import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import {SshConnections} from '../../src/remote/connections.js'
import {ensureAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {ApiTunnel} from '../../src/tunnel/api-tunnel.js'
import {allowRemoteForward} from '../../src/tunnel/sshd-forwarding.js'
import {createLab, type LabHost} from '../../test/helpers/lab.js'
import {labWorker} from '../../test/remote/lab-workers.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * The API tunnel against OpenSSH's own remote forward (`ssh -N -R`) to the same lab worker, and against no
 * tunnel at all (the worker dials this machine's address on the lab bridge: the floor), rounds interleaved
 * so a busy machine slows all alike. A client inside the worker (curl) measures a large download and a run
 * of short requests, each on a new connection (what a kubelet's watches and probes cost).
 * Usage: node dist/scripts/bench/tunnel.js [ROUNDS] [MIB] [CONNECTIONS]
 */
const rounds = Number(process.argv[2] ?? 5)
const mib = Number(process.argv[3] ?? 64)
const connections = Number(process.argv[4] ?? 100)
const ADDRESS = '100.64.255.1'

const body = randomBytes(mib << 20)

function serve(address: string): Promise<Server> {
  const server = createServer((request, response) => {
    const data = request.url === '/big' ? body : Buffer.from('ok\n')
    response.writeHead(200, {'content-length': data.length})
    response.end(data)
  })
  return new Promise((resolve) => server.listen(0, address, () => resolve(server)))
}

const portOf = (server: Server) => (server.address() as AddressInfo).port

/** Seconds curl inside the worker reports for the download, and for the short requests in sequence. */
async function measure(host: LabHost, base: string): Promise<{download: number; requests: number}> {
  const curl = `curl -sS -w '%{time_total}\\n'`
  const big = await host.exec(['sh', '-c', `${curl} -o /dev/null ${base}/big`])
  const urls = Array.from({length: connections}, () => `-o /dev/null ${base}/small`).join(' ')
  const small = await host.exec(['sh', '-c', `${curl} -H 'Connection: close' ${urls}`])
  if (big.code !== 0 || small.code !== 0) throw new Error(`curl ${base} failed: ${big.stderr}${small.stderr}`)
  const sum = (text: string) =>
    text
      .trim()
      .split('\n')
      .map(Number)
      .reduce((a, b) => a + b, 0)
  return {download: sum(big.stdout), requests: sum(small.stdout)}
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`not within 10 s: ${what}`)
}

async function main(): Promise<void> {
  const lab = await createLab({hosts: [{name: 'bench'}]})
  const servers: Server[] = []
  let tunnel: ApiTunnel | undefined
  let openssh: ReturnType<typeof spawn> | undefined
  try {
    const host = lab.host('bench')
    const worker = labWorker(lab, host)
    const setup = new SshConnections({})
    try {
      const ssh = await setup.host(worker)
      await ensureAdvertisedAddress(ssh, ADDRESS)
      await allowRemoteForward(ssh, {user: worker.ssh.user, address: ADDRESS, port: 6443})
    } finally {
      await setup.closeAll()
    }
    const local = await serve('127.0.0.1')
    const bridge = await serve(lab.subnet.replace(/\.0\/24$/, '.1'))
    servers.push(local, bridge)

    // hybrid's drop-in lets its login user listen on the one address and port only (PermitListen), so the
    // two tunnels take turns on it, each started afresh every round (its setup is not measured).
    const listening = async () => (await host.exec(['ss', '-Htln', 'sport = :6443'])).stdout.includes(`${ADDRESS}:6443`)
    const tunnels: Record<'hybrid' | 'openssh', {start(): Promise<void>; stop(): Promise<void>}> = {
      hybrid: {
        start: async () => {
          tunnel = new ApiTunnel({worker, bindAddress: ADDRESS, bindPort: 6443, targetPort: portOf(local)})
          await until('the hybrid tunnel listens', listening)
        },
        stop: async () => {
          await tunnel?.stop()
          tunnel = undefined
        },
      },
      openssh: {
        start: async () => {
          openssh = spawn(
            'ssh',
            [
              '-N',
              ...labSshOptions(lab),
              '-o',
              'ExitOnForwardFailure=yes',
              '-R',
              `${ADDRESS}:6443:127.0.0.1:${portOf(local)}`,
              `root@${host.address}`,
            ],
            {stdio: 'ignore'},
          )
          await until('the OpenSSH tunnel listens', listening)
        },
        stop: async () => {
          const child = openssh
          openssh = undefined
          if (child && child.exitCode === null) {
            const exited = new Promise((resolve) => child.once('exit', resolve))
            child.kill()
            await exited
          }
        },
      },
    }

    const routes = {
      hybrid: `http://${ADDRESS}:6443`,
      openssh: `http://${ADDRESS}:6443`,
      direct: `http://${lab.subnet.replace(/\.0\/24$/, '.1')}:${portOf(bridge)}`,
    }
    const results = {hybrid: [], openssh: [], direct: []} as Record<
      keyof typeof routes,
      {download: number; requests: number}[]
    >
    for (let round = 0; round < rounds; round++)
      for (const name of Object.keys(routes) as (keyof typeof routes)[]) {
        const through = name === 'direct' ? undefined : tunnels[name]
        await through?.start()
        results[name].push(await measure(host, routes[name]))
        await through?.stop()
        if (through) await until('the port is free again', async () => !(await listening()))
      }

    const rate = (s: number) => `${(mib / s).toFixed(0)} MiB/s`
    const per = (s: number) => `${((s * 1000) / connections).toFixed(2)} ms per connection`
    const of = (name: keyof typeof routes) => ({
      download: median(results[name].map((r) => r.download)),
      requests: median(results[name].map((r) => r.requests)),
    })
    const [hybrid, openSsh, direct] = [of('hybrid'), of('openssh'), of('direct')]
    console.log(
      `API tunnel, client inside a lab worker, ${rounds} rounds interleaved, medians (${mib} MiB; ${connections} requests on new connections):`,
    )
    for (const [label, r] of [
      ['hybrid ApiTunnel (ssh2)   ', hybrid],
      ['OpenSSH ssh -N -R         ', openSsh],
      ['no tunnel (floor)         ', direct],
    ] as const)
      console.log(`  ${label} ${rate(r.download).padStart(10)}   ${per(r.requests)}`)
    console.log(`ratio hybrid/OpenSSH, throughput (target >= 0.9): ${(openSsh.download / hybrid.download).toFixed(2)}`)
    console.log(
      `ratio hybrid/OpenSSH, connection rate (target >= 0.8): ${(openSsh.requests / hybrid.requests).toFixed(2)}`,
    )
    console.log(`floor: OpenSSH/no tunnel, throughput ${(direct.download / openSsh.download).toFixed(2)}`)
  } finally {
    openssh?.kill()
    await tunnel?.stop()
    for (const server of servers) server.close()
    await lab.destroy()
  }
}

await main()
