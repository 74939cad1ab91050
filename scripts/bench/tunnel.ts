import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import {SshConnections} from '../../src/remote/connections.js'
import {ensureAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {allowRemoteForward} from '../../src/tunnel/sshd-forwarding.js'
import {createLab, type LabHost} from '../../test/helpers/lab.js'
import {labWorker} from '../../test/remote/lab-workers.js'
import {type CpuTime, minus, processCpu, total} from './cpu-group.js'
import {hybridNegotiated, opensshNegotiated, ssh2CryptoPath} from './crypto-path.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * The API tunnel against OpenSSH's own remote forward (`ssh -N -R`) to the same lab worker, and against no
 * tunnel at all (the worker dials this machine's address on the lab bridge: the floor), rounds interleaved
 * so a busy machine slows all alike. A client inside the worker (curl) measures a large download and a run
 * of short requests, each on a new connection (what a kubelet's watches and probes cost). Each tunnel runs in
 * a process of its own (hybrid's in tunnel-process.js, as the supervisor holds it), and so does the server
 * (http-source.js, as the k3s server does), so the download's CPU per MiB is counted per process for both.
 * Usage: node dist/scripts/bench/tunnel.js [ROUNDS] [MIB] [CONNECTIONS]
 */
const rounds = Number(process.argv[2] ?? 5)
const mib = Number(process.argv[3] ?? 64)
const connections = Number(process.argv[4] ?? 100)
const ADDRESS = '100.64.255.1'

/** The API stand-in (http-source.js) in a process of its own; resolves with its port on each address. */
async function serve(addresses: string[]): Promise<{child: ChildProcess; ports: number[]}> {
  const script = fileURLToPath(new URL('./http-source.js', import.meta.url))
  const child = spawn(process.execPath, [script, String(mib), ...addresses], {stdio: ['pipe', 'pipe', 'inherit']})
  const [line] = (await once(createInterface({input: child.stdout}), 'line')) as [string]
  return {child, ports: JSON.parse(line) as number[]}
}

/** A process's CPU so far (nothing when there is no process: the floor). */
const cpuOf = (child: ChildProcess | undefined): Promise<CpuTime> =>
  child?.pid ? processCpu(child.pid) : Promise.resolve({user: 0, sys: 0})

/**
 * Seconds curl inside the worker reports for the download and for the short requests in sequence, and the
 * tunnel process's CPU seconds during the download. One download goes first, untimed: the supervisor that
 * holds a tunnel is a long-lived process whose JIT has compiled the data path, which a fresh process does
 * only during its first tens of MiB (OpenSSH's client, compiled ahead, has nothing to warm).
 */
async function measure(
  host: LabHost,
  base: string,
  tunnel: ChildProcess | undefined,
): Promise<{download: number; requests: number; cpu: number}> {
  const curl = `curl -sS -w '%{time_total}\\n'`
  const warm = await host.exec(['sh', '-c', `${curl} -o /dev/null ${base}/big`])
  if (warm.code !== 0) throw new Error(`curl ${base} failed: ${warm.stderr}`)
  const before = await cpuOf(tunnel)
  const big = await host.exec(['sh', '-c', `${curl} -o /dev/null ${base}/big`])
  const cpu = total(minus(await cpuOf(tunnel), before))
  const urls = Array.from({length: connections}, () => `-o /dev/null ${base}/small`).join(' ')
  const small = await host.exec(['sh', '-c', `${curl} -H 'Connection: close' ${urls}`])
  if (big.code !== 0 || small.code !== 0) throw new Error(`curl ${base} failed: ${big.stderr}${small.stderr}`)
  const sum = (text: string) =>
    text
      .trim()
      .split('\n')
      .map(Number)
      .reduce((a, b) => a + b, 0)
  return {download: sum(big.stdout), requests: sum(small.stdout), cpu}
}

/** Stop a tunnel process (stdin closed: hybrid's stops its tunnel first; SIGTERM for ssh) and wait for it. */
async function stopProcess(child: ChildProcess | undefined, how: 'stdin' | 'signal'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  if (how === 'stdin') child.stdin?.end()
  else child.kill()
  await exited
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
  let source: ChildProcess | undefined
  let tunnel: ChildProcess | undefined
  let openssh: ChildProcess | undefined
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
    const bridgeAddress = lab.subnet.replace(/\.0\/24$/, '.1')
    const served = await serve(['127.0.0.1', bridgeAddress])
    source = served.child
    const [localPort, bridgePort] = served.ports as [number, number]

    // hybrid's drop-in lets its login user listen on the one address and port only (PermitListen), so the
    // tunnels take turns on it, each started afresh every round (its setup is not measured).
    const listening = async () => (await host.exec(['ss', '-Htln', 'sport = :6443'])).stdout.includes(`${ADDRESS}:6443`)
    const hybridTunnel = {
      start: async () => {
        const target = {worker, bindAddress: ADDRESS, bindPort: 6443, targetPort: localPort}
        const script = fileURLToPath(new URL('./tunnel-process.js', import.meta.url))
        tunnel = spawn(process.execPath, [script, JSON.stringify(target)], {stdio: ['pipe', 'ignore', 'inherit']})
        await until('the hybrid tunnel listens', listening)
      },
      stop: async () => {
        await stopProcess(tunnel, 'stdin')
        tunnel = undefined
      },
    }
    /** OpenSSH's `ssh -N -R`, with its own choice of cipher or with `-c CIPHER`. */
    const opensshTunnel = (cipher: string[]) => ({
      start: async () => {
        openssh = spawn(
          'ssh',
          [
            '-N',
            ...labSshOptions(lab),
            ...cipher,
            '-o',
            'ExitOnForwardFailure=yes',
            '-R',
            `${ADDRESS}:6443:127.0.0.1:${localPort}`,
            `root@${host.address}`,
          ],
          {stdio: 'ignore'},
        )
        await until('the OpenSSH tunnel listens', listening)
      },
      stop: async () => {
        await stopProcess(openssh, 'signal')
        openssh = undefined
      },
    })
    const tunnels = {
      hybrid: hybridTunnel,
      openssh: opensshTunnel([]),
      opensshGcm: opensshTunnel(['-c', 'aes128-gcm@openssh.com']),
    }

    const routes = {
      hybrid: `http://${ADDRESS}:6443`,
      openssh: `http://${ADDRESS}:6443`,
      opensshGcm: `http://${ADDRESS}:6443`,
      direct: `http://${bridgeAddress}:${bridgePort}`,
    }
    const results = {hybrid: [], openssh: [], opensshGcm: [], direct: []} as Record<
      keyof typeof routes,
      {download: number; requests: number; cpu: number}[]
    >
    for (let round = 0; round < rounds; round++)
      for (const name of Object.keys(routes) as (keyof typeof routes)[]) {
        const through = name === 'direct' ? undefined : tunnels[name]
        await through?.start()
        const process = name === 'hybrid' ? tunnel : name === 'direct' ? undefined : openssh
        results[name].push(await measure(host, routes[name], process))
        await through?.stop()
        if (through) await until('the port is free again', async () => !(await listening()))
      }

    // The ciphers differ (ssh2 prefers AES-GCM where the CPU has AES instructions, OpenSSH chacha20-poly1305),
    // and sshd on the worker decrypts whichever was chosen, so they are printed beside the figures.
    console.log(`crypto: ${ssh2CryptoPath()}`)
    console.log(`  hybrid (ssh2) negotiates: ${await hybridNegotiated(worker)}`)
    console.log(`  OpenSSH's client negotiates: ${await opensshNegotiated(labSshOptions(lab), `root@${host.address}`)}`)
    const rate = (s: number) => `${(mib / s).toFixed(0)} MiB/s`
    const per = (s: number) => `${((s * 1000) / connections).toFixed(2)} ms per connection`
    const cpuPer = (s: number) => `${((s * 1000) / mib).toFixed(2)} ms CPU per MiB`
    const of = (name: keyof typeof routes) => ({
      download: median(results[name].map((r) => r.download)),
      requests: median(results[name].map((r) => r.requests)),
      cpu: median(results[name].map((r) => r.cpu)),
    })
    const [hybrid, openSsh, openSshGcm, direct] = [of('hybrid'), of('openssh'), of('opensshGcm'), of('direct')]
    console.log(
      `API tunnel, client inside a lab worker, ${rounds} rounds interleaved, medians (${mib} MiB; ${connections} requests on new connections):`,
    )
    for (const [label, r] of [
      ['hybrid ApiTunnel (ssh2)   ', hybrid],
      ['OpenSSH ssh -N -R         ', openSsh],
      ["OpenSSH, ssh2's cipher    ", openSshGcm],
      ['no tunnel (floor)         ', direct],
    ] as const)
      console.log(
        `  ${label} ${rate(r.download).padStart(10)}   ${per(r.requests)}` +
          (r === direct ? '' : `   tunnel process: ${cpuPer(r.cpu)}`),
      )
    console.log(`ratio hybrid/OpenSSH, throughput (target >= 0.9): ${(openSsh.download / hybrid.download).toFixed(2)}`)
    console.log(
      `ratio hybrid/OpenSSH, connection rate (target >= 0.8): ${(openSsh.requests / hybrid.requests).toFixed(2)}`,
    )
    console.log(
      `ratio hybrid/OpenSSH with ssh2's cipher (aes128-gcm), throughput ${(openSshGcm.download / hybrid.download).toFixed(2)}, ` +
        `CPU per MiB moved ${(hybrid.cpu / openSshGcm.cpu).toFixed(2)} (with its own cipher ${(hybrid.cpu / openSsh.cpu).toFixed(2)})`,
    )
    console.log(`floor: OpenSSH/no tunnel, throughput ${(direct.download / openSsh.download).toFixed(2)}`)
  } finally {
    openssh?.kill()
    await stopProcess(tunnel, 'stdin')
    source?.stdin?.end()
    await lab.destroy()
  }
}

await main()
