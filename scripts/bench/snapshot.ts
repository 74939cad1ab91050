import {execFile} from 'node:child_process'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {CoreV1Api} from '@kubernetes/client-node'

import {buildArchive, datastorePath} from '../../src/snapshot/archive.js'
import {seal} from '../../src/snapshot/sealed.js'
import {clusterPaths} from '../../src/state/cluster-state.js'
import {createLab} from '../../test/helpers/lab.js'
import {freePort} from '../../test/helpers/free-port.js'
import {startStandinServer} from '../../test/helpers/standin-server.js'
import {runHybrid} from '../../test/native/helpers/run-hybrid.js'
import {writeLabInventory} from '../../test/remote/lab-workers.js'
import {STANDIN} from '../../test/system/cluster-fixture.js'

/**
 * Snapshots (docs/architecture.md, "Snapshots and restore"):
 * 1. the time and size of a snapshot (consistent copy, tar, encryption) of a datastore of OBJECTS objects
 *    (ConfigMaps in the k3s stand-in's kine sqlite), beside the floor: `sqlite3 state.db .backup` of the same
 *    file;
 * 2. restore-to-Ready with 3 and 8 lab workers: a cluster brought up, snapshotted, its supervisor and k3s
 *    SIGKILLed, its data dir and state removed; then the wall time of `hybrid up --detach`, which restores,
 *    starts k3s and returns once every worker's Node is Ready.
 * Usage: node dist/scripts/bench/snapshot.js [OBJECTS]
 */
const run = promisify(execFile)
const objects = Number(process.argv[2] ?? 10_000)
const ms = (t: number) => `${t.toFixed(0)} ms`
const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`

async function datastore(): Promise<void> {
  const server = await startStandinServer(['--disable-agent'])
  const stateDir = await mkdtemp(join(tmpdir(), 'hybrid-bench-snapshot-'))
  try {
    const api = server.kc.makeApiClient(CoreV1Api)
    const data = {value: 'x'.repeat(200)}
    for (let i = 0; i < objects; i += 50)
      await Promise.all(
        Array.from({length: Math.min(50, objects - i)}, (_, j) =>
          api.createNamespacedConfigMap({namespace: 'default', body: {metadata: {name: `c${i + j}`}, data}}),
        ),
      )
    const dataDir = join(dirname(server.kubeconfig), 'data')
    const db = datastorePath(dataDir)
    process.env.HYBRID_STATE_DIR = stateDir
    const paths = clusterPaths('bench')
    const started = performance.now()
    const archive = await buildArchive(dataDir, paths)
    const copied = performance.now()
    const sealed = await seal(archive, 'a cluster token', {
      id: 'bench',
      cluster: 'bench',
      k3sVersion: 'v1.34.1+k3s1',
      createdAt: new Date().toISOString(),
    })
    const done = performance.now()
    const floorFile = join(stateDir, 'floor.db')
    const floorStart = performance.now()
    await run('sqlite3', [db, `.backup ${floorFile}`])
    const floor = performance.now() - floorStart
    const dbBytes = (await stat(db)).size + (await stat(`${db}-wal`).catch(() => ({size: 0}))).size
    console.log(`datastore: ${objects} ConfigMaps, state.db + WAL ${mib(dbBytes)}`)
    console.log(`  snapshot (backup API + tar.gz): ${ms(copied - started)}, archive ${mib(archive.byteLength)}`)
    console.log(`  + encryption (scrypt + AES-256-GCM): ${ms(done - copied)}; sealed ${mib(sealed.bytes.byteLength)}`)
    console.log(`  floor, sqlite3 .backup of the same file: ${ms(floor)}, ${mib((await stat(floorFile)).size)}`)
  } finally {
    delete process.env.HYBRID_STATE_DIR
    await server.stop()
    await rm(stateDir, {recursive: true, force: true})
  }
}

async function restoreToReady(size: number): Promise<number> {
  const lab = await createLab({hosts: Array.from({length: size}, (_, i) => ({name: `w${i + 1}`}))})
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-bench-restore-'))
  try {
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: `restore${size}`,
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {
          agent: false,
          workarounds: 'none',
          apiPort: await freePort(),
          snapshots: {to: ['w1'], every: '1h', keep: 2},
        },
        concurrency: 16,
      },
    )
    const env = {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache')}
    const must = async (args: string[]) => {
      const r = await runHybrid(args, {env, timeoutMs: 600_000})
      if (r.code !== 0) throw new Error(`hybrid ${args.join(' ')} failed (${r.code}): ${r.stderr.slice(-2000)}`)
      return `${r.stdout}${r.stderr}`
    }
    await must(['up', '--inventory', inventory, '--detach'])
    await must(['snapshot', 'save', '--inventory', inventory])
    const state = JSON.parse(
      await readFile(join(dir, 'state', 'clusters', `restore${size}`, 'state.json'), 'utf8'),
    ) as {
      supervisor?: {pid: number}
      k3s?: {pid: number}
    }
    for (const pid of [state.supervisor?.pid, state.k3s?.pid]) if (pid) process.kill(pid, 'SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 500))
    await rm(join(dir, 'data'), {recursive: true, force: true})
    await rm(join(dir, 'state'), {recursive: true, force: true})
    const started = performance.now()
    const output = await must(['up', '--inventory', inventory, '--detach'])
    const wall = performance.now() - started
    if (!output.includes('restored snapshot'))
      throw new Error(`up did not restore the snapshot:\n${output.slice(-2000)}`)
    await must(['down', '--inventory', inventory, '--uninstall-workers'])
    return wall
  } finally {
    await lab.destroy()
    await rm(dir, {recursive: true, force: true})
  }
}

async function main(): Promise<void> {
  await datastore()
  for (const size of [3, 8])
    console.log(`restore to Ready, ${size} workers: ${ms(await restoreToReady(size))} (hybrid up --detach)`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
}) as {
  supervisor?: {pid: number}
  k3s?: {pid: number}
}
