import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmod, mkdtemp, open, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {createLab, type Lab, type LabHost} from '../../test/helpers/lab.js'
import {freePort} from '../../test/helpers/free-port.js'
import {runHybrid} from '../../test/native/helpers/run-hybrid.js'
import {writeLabInventory} from '../../test/remote/lab-workers.js'
import {STANDIN} from '../../test/system/cluster-fixture.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * Wall time of `hybrid up --inventory --detach` joining 1, 8 and 16 lab workers (tunnel mode, the k3s
 * stand-in as an agentless server and as the agents) with a k3s binary of MIB MiB, rounds interleaved;
 * each round is a fresh cluster, taken down (untimed) before the next. The floor beside it: OpenSSH's
 * scp of the same file to 1 and to 16 hosts at once, the transfer no join can avoid.
 * Usage: node dist/scripts/bench/join.js [ROUNDS] [MIB]
 */
const run = promisify(execFile)
const rounds = Number(process.argv[2] ?? 3)
const mib = Number(process.argv[3] ?? 70)
const SIZES = [1, 8, 16] as const

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

async function scpAll(lab: Lab, hosts: readonly LabHost[], file: string): Promise<void> {
  await Promise.all(
    hosts.map((h) =>
      run('scp', ['-q', ...labSshOptions(lab), '-P', String(h.port), file, `root@${h.address}:/tmp/k3s-scp`]),
    ),
  )
  await Promise.all(hosts.map((h) => h.exec(['rm', '-f', '/tmp/k3s-scp'])))
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hybrid-bench-join-'))
  const binary = await paddedStandin(work)
  const lab = await createLab({hosts: Array.from({length: 16}, (_, i) => ({name: `w${i + 1}`}))})
  try {
    const wall: Record<number, number[]> = {1: [], 8: [], 16: []}
    const floor: Record<number, number[]> = {1: [], 16: []}
    for (let round = 0; round < rounds; round++) {
      for (const size of SIZES) {
        const dir = await mkdtemp(join(work, `r${round}-${size}-`))
        const inventory = await writeLabInventory(
          dir,
          lab,
          lab.hosts.slice(0, size).map((host) => ({host})),
          {
            name: `bench${size}`,
            k3s: {version: 'v1.34.1+k3s1', binary},
            controlPlane: {agent: false, apiPort: await freePort()},
            concurrency: 16,
          },
        )
        const env = {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache')}
        const started = performance.now()
        const up = await runHybrid(['up', '--inventory', inventory, '--detach'], {env, timeoutMs: 600_000})
        wall[size].push(performance.now() - started)
        const down = await runHybrid(['down', '--inventory', inventory], {env, timeoutMs: 300_000})
        if (up.code !== 0) throw new Error(`up with ${size} workers failed (${up.code}): ${up.stderr.slice(-2000)}`)
        if (down.code !== 0) throw new Error(`down with ${size} workers failed: ${down.stderr.slice(-2000)}`)
      }
      for (const size of [1, 16] as const) {
        const started = performance.now()
        await scpAll(lab, lab.hosts.slice(0, size), binary)
        floor[size].push(performance.now() - started)
      }
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
    console.log(`hybrid up --detach, tunnel mode, ${mib} MiB k3s, ${rounds} rounds interleaved, medians:`)
    for (const size of SIZES)
      console.log(`  ${String(size).padStart(2)} worker${size === 1 ? ' ' : 's'}  ${s(median(wall[size]))}`)
    console.log(`ratio 16/1 (target <= 2): ${(median(wall[16]) / median(wall[1])).toFixed(2)}`)
    console.log(`ratio 8/1: ${(median(wall[8]) / median(wall[1])).toFixed(2)}`)
    const transfer = median(floor[16]) - median(floor[1])
    console.log(
      `floor: OpenSSH scp of the ${mib} MiB file, all hosts at once: 1 host ${s(median(floor[1]))}, ` +
        `16 hosts ${s(median(floor[16]))} (the transfer alone adds ${s(transfer)})`,
    )
    // No join of 16 can take less than a join of 1 plus the extra transfer this machine needs for 16.
    console.log(
      `best ratio 16/1 this machine allows (1 worker's wall + the extra transfer, over 1 worker's wall): ` +
        `${((median(wall[1]) + transfer) / median(wall[1])).toFixed(2)}`,
    )
  } finally {
    await lab.destroy()
    await rm(work, {recursive: true, force: true})
  }
}

await main()
