import {once} from 'node:events'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  bytesFromCoordinator,
  countFromCoordinator,
  labGateway,
  paddedStandin,
} from '../../test/helpers/coordinator-bytes.js'
import {createLab} from '../../test/helpers/lab.js'
import {freePort} from '../../test/helpers/free-port.js'
import {runHybrid} from '../../test/native/helpers/run-hybrid.js'
import {writeLabInventory} from '../../test/remote/lab-workers.js'

/**
 * Bytes the coordinator sends each worker while `hybrid up --detach` joins N lab workers (one /24: one
 * peers group), per spec.k3s.distribute mode, with a k3s binary of MIB MiB (the k3s stand-in padded to
 * that size). Counted in each lab host by an iptables rule on the coordinator's SSH traffic; the floor
 * beside it is the binary's size. worker-download fetches from a release server this benchmark runs on the
 * lab's gateway address (HYBRID_WORKER_RELEASE_URL). Each mode is a fresh cluster, taken down with
 * --uninstall-workers (uncounted) before the next.
 * Usage: node dist/scripts/bench/distribute.js [WORKERS] [MIB]
 */
const workers = Number(process.argv[2] ?? 8)
const mib = Number(process.argv[3] ?? 70)
const MODES = ['coordinator', 'peers', 'worker-download'] as const
const MiB = 1 << 20

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hybrid-bench-distribute-'))
  const {binary} = await paddedStandin(work, mib)
  const bytes = await readFile(binary)
  const lab = await createLab({hosts: Array.from({length: workers}, (_, i) => ({name: `w${i + 1}`}))})
  const gateway = labGateway(lab)
  const release = createServer((request, response) => {
    if (request.url !== '/v1.34.1%2Bk3s1/k3s') return void response.writeHead(404).end()
    response.writeHead(200, {'content-length': bytes.length}).end(bytes)
  })
  release.listen(0, gateway)
  await once(release, 'listening')
  const url = `http://${gateway}:${(release.address() as AddressInfo).port}`
  try {
    const rows: string[] = []
    for (const mode of MODES) {
      const dir = await mkdtemp(join(work, `${mode}-`))
      const inventory = await writeLabInventory(
        dir,
        lab,
        lab.hosts.map((host) => ({host})),
        {
          name: 'benchdist',
          k3s: {version: 'v1.34.1+k3s1', binary, distribute: mode},
          controlPlane: {agent: false, apiPort: await freePort()},
          concurrency: 16,
        },
      )
      const env = {
        ...process.env,
        HYBRID_STATE_DIR: join(dir, 'state'),
        HYBRID_CACHE_DIR: join(dir, 'cache'),
        HYBRID_WORKER_RELEASE_URL: url,
      }
      for (const host of lab.hosts) await countFromCoordinator(host, gateway)
      const started = performance.now()
      const up = await runHybrid(['up', '--inventory', inventory, '--detach'], {env, timeoutMs: 900_000})
      const seconds = (performance.now() - started) / 1000
      const sent = await Promise.all(lab.hosts.map((host) => bytesFromCoordinator(host)))
      const down = await runHybrid(['down', '--uninstall-workers', '--inventory', inventory], {env, timeoutMs: 300_000})
      if (up.code !== 0) throw new Error(`up (${mode}) failed (${up.code}): ${up.stderr.slice(-2000)}`)
      if (down.code !== 0) throw new Error(`down (${mode}) failed: ${down.stderr.slice(-2000)}`)
      const total = sent.reduce((a, b) => a + b, 0)
      const m = (n: number) => `${(n / MiB).toFixed(2)} MiB`
      rows.push(
        `  ${mode.padEnd(16)} per worker ${m(total / workers).padStart(10)}   max ${m(Math.max(...sent)).padStart(10)}` +
          `   min ${m(Math.min(...sent)).padStart(10)}   total ${m(total).padStart(11)}   up ${seconds.toFixed(1)} s`,
      )
    }
    console.log(
      `bytes the coordinator sends each worker over SSH while \`up\` joins ${workers} lab workers, ${mib} MiB k3s binary:`,
    )
    for (const row of rows) console.log(row)
    console.log(
      `floor: the binary itself, ${mib.toFixed(2)} MiB, sent at least once (peers) or never (worker-download)`,
    )
  } finally {
    release.close()
    await lab.destroy()
    await rm(work, {recursive: true, force: true})
  }
}

await main()
