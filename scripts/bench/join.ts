import {execFile, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmod, mkdtemp, open, rm} from 'node:fs/promises'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {createLab, type Lab, type LabHost} from '../../test/helpers/lab.js'
import {freePort} from '../../test/helpers/free-port.js'
import {HYBRID} from '../../test/native/helpers/run-hybrid.js'
import {labWorker, writeLabInventory} from '../../test/remote/lab-workers.js'
import {STANDIN} from '../../test/system/cluster-fixture.js'
import {CpuGroup, type CpuTime, findInGroup, minus, processCpu, total} from './cpu-group.js'
import {hybridNegotiated, opensshNegotiated, ssh2CryptoPath} from './crypto-path.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * What joining workers costs the coordinator (docs/architecture.md, "Benchmarks"): `hybrid up --inventory
 * --detach` with 0, 1, 8, 16 and 50 lab workers (tunnel mode, the k3s stand-in as an agentless server and
 * as the agents, a k3s binary of MIB MiB), rounds interleaved, each a fresh cluster taken down with its workers uninstalled (untimed)
 * before the next. For each size:
 * - the coordinator's CPU (user + sys): the `up` process, its supervisor and everything they start, counted
 *   by a cpuacct cgroup of their own, less the k3s server's own CPU (from /proc/PID/stat);
 * - beside it the floor: OpenSSH's client making the same connections, running the same number of commands
 *   and copying the same file (scp) to the same hosts, in a cgroup of its own;
 * - wall time, and the lab's CPU meanwhile (its sshd processes, sessions and stand-in agents: a cgroup too);
 * - the supervisor at rest for REST seconds after the join (less k3s), as a share of one core.
 * Usage: node dist/scripts/bench/join.js [ROUNDS] [MIB] [SIZES] [REST]   (defaults 1, 70, 0,1,8,16,50, 20)
 */
const run = promisify(execFile)
const rounds = Number(process.argv[2] ?? 1)
const mib = Number(process.argv[3] ?? 70)
const SIZES = (process.argv[4] ?? '0,1,8,16,50').split(',').map(Number)
const REST_S = Number(process.argv[5] ?? 20)
const CONCURRENCY = 16
const largest = Math.max(...SIZES)

/**
 * A k3s "binary" of the size of the real one: a shell script that runs the stand-in (which every lab
 * host sees at its path on this machine), padded with random bytes after `exit` that sh never reads.
 */
async function paddedStandin(dir: string): Promise<string> {
  const file = join(dir, 'k3s')
  const handle = await open(file, 'w')
  await handle.write(`#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(STANDIN)} "$@"\nexit 1\n`)
  for (let i = 0; i < mib; i++) await handle.write(randomBytes(1 << 20))
  await handle.close()
  await chmod(file, 0o755)
  return file
}

/** Run argv in `group`, resolving with its exit code and output. */
function runIn(group: CpuGroup, argv: string[], env: NodeJS.ProcessEnv): Promise<{code: number | null; out: string}> {
  const [cmd, ...args] = group.wrap(argv)
  const child = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out = (out + d).slice(-4000)))
  child.stderr.on('data', (d) => (out = (out + d).slice(-4000)))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({code, out}))
  })
}

async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  await Promise.all(
    Array.from({length: Math.min(limit, queue.length)}, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item)
    }),
  )
}

/** What one join does to one worker over SSH, counted in its sshd's debug log. */
interface Work {
  connections: number
  commands: number
}

function countWork(log: string): Work {
  return {
    connections: (log.match(/Accepted publickey for/g) ?? []).length,
    commands: (log.match(/session_input_channel_req: session \d+ req (exec|subsystem)/g) ?? []).length,
  }
}

/**
 * The floor: OpenSSH's client doing per host what the join did (the same number of connections and
 * commands, the same file copied), up to CONCURRENCY hosts at once. Connections beyond the first each run
 * one command (`ssh host true`); the first is a ControlMaster that carries the copy (scp) and the rest of
 * the commands (`ssh -S`, one small client process each, as OpenSSH runs commands). The connections and
 * the copy count in `transfer`, the commands carried by the master in `commands` (mostly the cost of
 * starting a client process per command, which hybrid does not pay).
 */
async function openSshFloor(
  groups: {transfer: CpuGroup; commands: CpuGroup},
  lab: Lab,
  hosts: readonly LabHost[],
  file: string,
  work: Work,
  dir: string,
) {
  const opts = labSshOptions(lab)
  const inGroup = (group: CpuGroup, argv: string[]) => {
    const [cmd, ...args] = group.wrap(argv)
    return run(cmd, args)
  }
  const ssh = (group: CpuGroup, args: string[]) => inGroup(group, ['ssh', ...opts, ...args])
  await pool(hosts, CONCURRENCY, async (h) => {
    const dest = `root@${h.address}`
    const ctl = ['-o', `ControlPath=${join(dir, `ctl-${h.name}`)}`]
    await ssh(groups.transfer, [...ctl, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-fN', dest])
    for (let i = 1; i < work.connections; i++) await ssh(groups.transfer, [dest, 'true'])
    await inGroup(groups.transfer, ['scp', '-q', ...opts, ...ctl, file, `${dest}:/tmp/k3s-scp`])
    for (let i = work.connections; i < work.commands; i++) await ssh(groups.commands, [...ctl, dest, 'true'])
    await ssh(groups.transfer, [...ctl, '-O', 'exit', dest]).catch(() => undefined)
  })
  await Promise.all(hosts.map((h) => h.exec(['rm', '-f', '/tmp/k3s-scp'])))
}

interface Sample {
  wall: number
  coordinator: CpuTime
  k3s: CpuTime
  lab: CpuTime
  floor: CpuTime
  floorTransfer: CpuTime
  floorWall: number
  rest: number
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hybrid-bench-join-'))
  const binary = await paddedStandin(work)
  const labGroup = await CpuGroup.create('lab')
  const groups: CpuGroup[] = [labGroup]
  let lab: Lab | undefined
  try {
    // The lab's sshd processes (and every session and agent they start) count in the lab's group.
    await labGroup.add(process.pid)
    lab = await createLab({
      hosts: Array.from({length: largest}, (_, i) => ({
        name: `w${i + 1}`,
        ...(i === 0 ? {sshd: ['LogLevel DEBUG1']} : {}),
      })),
    }).finally(() => CpuGroup.create('bench').then((g) => (groups.push(g), g.add(process.pid))))
    const w1 = lab.hosts[0]
    console.log(`crypto: ${ssh2CryptoPath()}`)
    console.log(`  hybrid (ssh2) negotiates: ${await hybridNegotiated(labWorker(lab, w1))}`)
    console.log(`  OpenSSH's client negotiates: ${await opensshNegotiated(labSshOptions(lab), `root@${w1.address}`)}`)

    let perWorker: Work | undefined
    const samples: Record<number, Sample[]> = Object.fromEntries(SIZES.map((s) => [s, []]))
    for (let round = 0; round < rounds; round++) {
      for (const size of SIZES) {
        const dir = await mkdtemp(join(work, `r${round}-${size}-`))
        const hosts = lab.hosts.slice(0, size)
        const inventory = await writeLabInventory(
          dir,
          lab,
          hosts.map((host) => ({host})),
          {
            name: `bench${size}`,
            k3s: {version: 'v1.34.1+k3s1', binary},
            controlPlane: {agent: false, apiPort: await freePort()},
            concurrency: CONCURRENCY,
            ssh: {connectTimeoutSeconds: 60},
          },
        )
        const env = {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache')}
        const coordinator = await CpuGroup.create(`coord-${round}-${size}`)
        groups.push(coordinator)
        const logBefore = size === 1 ? (await w1.sshdLog()).length : 0
        const labBefore = await labGroup.usage()
        const started = performance.now()
        const up = await runIn(coordinator, [process.execPath, HYBRID, 'up', '--inventory', inventory, '--detach'], env)
        const wall = performance.now() - started
        const labCpu = minus(await labGroup.usage(), labBefore)
        const k3sPid = (await findInGroup(coordinator, [STANDIN, 'server']))[0]
        const k3sAt = async () => (k3sPid ? processCpu(k3sPid) : {user: 0, sys: 0})
        const [coordinatorCpu, k3sCpu] = [await coordinator.usage(), await k3sAt()]
        if (up.code !== 0) throw new Error(`up with ${size} workers failed (${up.code}): ${up.out}`)
        if (size === 1 && !perWorker) perWorker = countWork((await w1.sshdLog()).slice(logBefore))
        // The supervisor at rest, holding the tunnels: 30 s to settle, then REST_S seconds. Some 10-20 s after
        // a Node.js process goes quiet, V8's memory reducer runs a few GCs on its helper threads (about 0.2 s
        // of CPU, once); a shorter settle counted that as rest (1-1.6 % of a core with no worker at all).
        await new Promise((resolve) => setTimeout(resolve, 30_000))
        const [c0, k0] = [await coordinator.usage(), await k3sAt()]
        await new Promise((resolve) => setTimeout(resolve, REST_S * 1000))
        const [c1, k1] = [await coordinator.usage(), await k3sAt()]
        const rest = (total(minus(c1, c0)) - total(minus(k1, k0))) / REST_S
        const down = await runIn(
          coordinator,
          [process.execPath, HYBRID, 'down', '--inventory', inventory, '--uninstall-workers'],
          env,
        )
        if (down.code !== 0) throw new Error(`down with ${size} workers failed: ${down.out}`)

        let floor: CpuTime = {user: 0, sys: 0}
        let floorTransfer: CpuTime = {user: 0, sys: 0}
        let floorWall = 0
        if (size > 0 && perWorker) {
          const transfer = await CpuGroup.create(`floor-${round}-${size}`)
          const commands = await CpuGroup.create(`floor-commands-${round}-${size}`)
          groups.push(transfer, commands)
          const t = performance.now()
          await openSshFloor({transfer, commands}, lab, hosts, binary, perWorker, dir)
          floorWall = performance.now() - t
          floorTransfer = await transfer.usage()
          const c = await commands.usage()
          floor = {user: floorTransfer.user + c.user, sys: floorTransfer.sys + c.sys}
        }
        samples[size].push({
          wall,
          coordinator: minus(coordinatorCpu, k3sCpu),
          k3s: k3sCpu,
          lab: labCpu,
          floor,
          floorTransfer,
          floorWall,
          rest,
        })
        console.error(
          `round ${round + 1}, ${size} workers: wall ${(wall / 1000).toFixed(1)} s, coordinator ${total(minus(coordinatorCpu, k3sCpu)).toFixed(2)} s CPU, ` +
            `k3s ${total(k3sCpu).toFixed(2)} s, lab ${total(labCpu).toFixed(2)} s, OpenSSH floor ${total(floor).toFixed(2)} s, at rest ${(rest * 100).toFixed(2)} % of a core`,
        )
      }
    }

    const med = (size: number, f: (s: Sample) => number) => median(samples[size].map(f))
    const fixed = SIZES.includes(0) ? med(0, (s) => total(s.coordinator)) : 0
    console.log(
      `hybrid up --detach, tunnel mode, ${mib} MiB k3s, concurrency ${CONCURRENCY}, ${rounds} round(s) interleaved, medians; ` +
        `per worker the join did ${perWorker?.connections} SSH connections and ${perWorker?.commands} commands (sshd's log of w1), which the floor repeats`,
    )
    console.log(
      'workers | wall s | lab CPU s | coord CPU s (user+sys) | per worker, less the 0-worker run | OpenSSH floor per worker (connections + copy) | ratio (goal <= 1.5) | ratio to connections + copy | supervisor at rest (goal <= 2 %)',
    )
    for (const size of SIZES) {
      const coord = med(size, (s) => total(s.coordinator))
      const per = size > 0 ? (coord - fixed) / size : 0
      const floor = size > 0 ? med(size, (s) => total(s.floor)) / size : 0
      const transfer = size > 0 ? med(size, (s) => total(s.floorTransfer)) / size : 0
      console.log(
        [
          String(size).padStart(7),
          (med(size, (s) => s.wall) / 1000).toFixed(1).padStart(6),
          med(size, (s) => total(s.lab))
            .toFixed(1)
            .padStart(9),
          `${coord.toFixed(2)} (${med(size, (s) => s.coordinator.user).toFixed(2)}+${med(size, (s) => s.coordinator.sys).toFixed(2)})`.padStart(
            22,
          ),
          (size > 0 ? `${(per * 1000).toFixed(0)} ms` : '-').padStart(34),
          (size > 0 ? `${(floor * 1000).toFixed(0)} ms (${(transfer * 1000).toFixed(0)} ms)` : '-').padStart(44),
          (size > 0 ? (per / floor).toFixed(2) : '-').padStart(19),
          (size > 0 ? (per / transfer).toFixed(2) : '-').padStart(27),
          `${(med(size, (s) => s.rest) * 100).toFixed(2)} %`.padStart(32),
        ].join(' | '),
      )
    }
    const perOf = (size: number) => (med(size, (s) => total(s.coordinator)) - fixed) / size
    if (SIZES.includes(8) && SIZES.includes(largest) && largest > 8)
      console.log(
        `growth of CPU per worker from 8 to ${largest} (goal <= 1.10): ${(perOf(largest) / perOf(8)).toFixed(2)}; ` +
          // Each round against its own 0-worker run: the spread says how far one median of few rounds can be trusted.
          `per round: ${samples[8]
            .map((s8, r) => {
              const zero = SIZES.includes(0) ? total(samples[0][r].coordinator) : 0
              return (
                (total(samples[largest][r].coordinator) - zero) /
                largest /
                ((total(s8.coordinator) - zero) / 8)
              ).toFixed(2)
            })
            .join(', ')}`,
      )
    if (SIZES.includes(1) && largest > 1) {
      const wallRatio = med(largest, (s) => s.wall) / med(1, (s) => s.wall)
      const floorRatio =
        (med(1, (s) => s.wall) + med(largest, (s) => s.floorWall) - med(1, (s) => s.floorWall)) / med(1, (s) => s.wall)
      console.log(
        `wall ${largest}/1 (goal <= 3): ${wallRatio.toFixed(2)}; the lab's own CPU meanwhile ${med(largest, (s) => total(s.lab)).toFixed(1)} s ` +
          `(${((med(largest, (s) => total(s.lab)) / (med(largest, (s) => s.wall) / 1000)) * (100 / cpus().length)).toFixed(0)} % of the machine's ${cpus().length} cores); ` +
          `floor (1 worker's wall + OpenSSH's extra wall for ${largest}): ${floorRatio.toFixed(2)}`,
      )
      // The run's own CPU floor: no schedule finishes before the machine's cores have done all of the run's
      // work (the coordinator, the k3s server, the lab's sshd processes and agents starting).
      const busy = med(largest, (s) => total(s.coordinator) + total(s.k3s) + total(s.lab)) / cpus().length
      console.log(
        `CPU floor of the ${largest}-worker run (all its CPU / ${cpus().length} cores): ${busy.toFixed(1)} s of its ${(med(largest, (s) => s.wall) / 1000).toFixed(1)} s wall ` +
          `(${((busy * 1000) / med(largest, (s) => s.wall)).toFixed(2)} of it); wall ${largest}/1 at that floor: ${((busy * 1000) / med(1, (s) => s.wall)).toFixed(2)}`,
      )
    }
  } finally {
    await lab?.destroy()
    for (const group of groups.reverse()) await group.remove()
    await rm(work, {recursive: true, force: true})
  }
}

await main()
