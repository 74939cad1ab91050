import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost} from '../../test/helpers/lab.js'
import {runHybrid} from '../../test/native/helpers/run-hybrid.js'
import {writeLabInventory} from '../../test/remote/lab-workers.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * Wall time of `hybrid preflight --inventory` with 1 and with 16 lab workers (target: 16 within 1.5× of 1),
 * rounds interleaved; also the worker checks' own time, which excludes the machine's probes.
 * Usage: node dist/scripts/bench/preflight.js [ROUNDS] [WORKERS]
 */
const rounds = Number(process.argv[2] ?? 3)
const many = Number(process.argv[3] ?? 16)

/** The floor: OpenSSH's own client, one login and one command per host, all hosts at once. */
function sshAll(lab: Lab, hosts: readonly LabHost[]): Promise<void> {
  const one = (host: LabHost) =>
    new Promise<void>((resolve, reject) => {
      const argv = [...labSshOptions(lab), '-p', String(host.port), `root@${host.address}`, 'uname -m']
      execFile('ssh', argv, (error) => (error ? reject(new Error(`ssh ${host.address}: ${error.message}`)) : resolve()))
    })
  return Promise.all(hosts.map(one)).then(() => undefined)
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hybrid-bench-preflight-'))
  const lab = await createLab({
    hosts: Array.from({length: many}, (_, i) => ({name: `w${i + 1}`, sshd: ['GatewayPorts clientspecified']})),
  })
  try {
    const inventories = {
      one: await writeLabInventory(await mkdtemp(join(work, 'one-')), lab, [{host: lab.hosts[0]}]),
      many: await writeLabInventory(
        await mkdtemp(join(work, 'many-')),
        lab,
        lab.hosts.map((host) => ({host})),
      ),
    }
    const wall = {one: [] as number[], many: [] as number[]}
    const checks = {one: [] as number[], many: [] as number[]}
    const floor = {one: [] as number[], many: [] as number[]}
    for (let round = 0; round < rounds; round++) {
      for (const size of ['one', 'many'] as const) {
        const started = performance.now()
        const result = await runHybrid(['preflight', '--inventory', inventories[size], '--json'], {timeoutMs: 120_000})
        wall[size].push(performance.now() - started)
        const document = JSON.parse(result.stdout) as {workers: {ok: boolean; elapsedMs: number}}
        if (result.code !== 0 || !document.workers.ok) throw new Error(`preflight failed: ${result.stderr}`)
        checks[size].push(document.workers.elapsedMs)
        const floorStarted = performance.now()
        await sshAll(lab, size === 'one' ? lab.hosts.slice(0, 1) : lab.hosts)
        floor[size].push(performance.now() - floorStarted)
      }
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
    console.log(`hybrid preflight --inventory, ${rounds} rounds interleaved, medians:`)
    console.log(`  1 worker     wall ${s(median(wall.one))}   worker checks ${s(median(checks.one))}`)
    console.log(`  ${many} workers  wall ${s(median(wall.many))}   worker checks ${s(median(checks.many))}`)
    console.log(`ratio ${many}/1 (wall, target <= 1.5): ${(median(wall.many) / median(wall.one)).toFixed(2)}`)
    console.log(`ratio ${many}/1 (worker checks alone): ${(median(checks.many) / median(checks.one)).toFixed(2)}`)
    console.log(
      `floor: OpenSSH ssh, one login + one command per host, all at once: 1 host ${s(median(floor.one))}, ` +
        `${many} hosts ${s(median(floor.many))}, ratio ${(median(floor.many) / median(floor.one)).toFixed(2)}`,
    )
  } finally {
    await lab.destroy()
    await rm(work, {recursive: true, force: true})
  }
}

await main()
