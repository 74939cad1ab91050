import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {useTempStateDir} from '../helpers/state-dir.js'
import {fileURLToPath} from 'node:url'

import type {WorkerSpec} from '../../src/inventory/model.js'
import {DEFAULT_REMOTE_LIMITS} from '../../src/remote/limits.js'
import {
  changeWorkerRecord,
  forgetInstalled,
  listMovedAsideRecords,
  listWorkerRecords,
  type RecordCache,
  type MovedAside,
  readWorkerRecord,
  recordInstalled,
} from '../../src/state/worker-records.js'

const RECORDS_JS = fileURLToPath(new URL('../../src/state/worker-records.js', import.meta.url))

function spec(name: string): WorkerSpec {
  return {
    name,
    address: '10.213.0.11',
    ssh: {
      user: 'root',
      port: 22,
      identityFile: null,
      knownHosts: '/nonexistent/known_hosts',
      hostKeyPolicy: 'strict',
      connectTimeoutSeconds: 5,
      ...DEFAULT_REMOTE_LIMITS,
      sudo: 'auto',
      proxy: null,
      bastion: null,
    },
    labels: {},
    taints: [],
    hostKey: null,
    service: 'auto',
  }
}

describe('worker records (state/worker-records)', () => {
  const stateDir = useTempStateDir('hybrid-workers-')

  it('keeps one 0600 file per worker, records and forgets what was installed, and removes the record', async () => {
    await recordInstalled('lab', spec('w1'), {binary: {path: '/usr/local/bin/k3s', sha256: 'ab'}})
    await recordInstalled('lab', spec('w1'), {address: {address: '100.64.255.1', device: 'hybrid0', created: true}})
    const file = join(stateDir(), 'clusters', 'lab', 'workers', 'w1.json')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const record = await readWorkerRecord('lab', 'w1')
    assert.equal(record?.phase, 'joining')
    assert.deepEqual(Object.keys(record?.installed ?? {}).sort(), ['address', 'binary'])
    await forgetInstalled('lab', 'w1', 'binary')
    assert.deepEqual(Object.keys((await readWorkerRecord('lab', 'w1'))?.installed ?? {}), ['address'])
    await changeWorkerRecord('lab', 'w1', () => null)
    assert.equal(await readWorkerRecord('lab', 'w1'), undefined)
    assert.deepEqual(await readdir(join(stateDir(), 'clusters', 'lab', 'workers')), [], 'no lock or temp file is left')
  })

  it('lists the records by worker name and says in one sentence that a broken one is unusable', async () => {
    await recordInstalled('lab', spec('w2'), {})
    await recordInstalled('lab', spec('w1'), {})
    assert.deepEqual(
      (await listWorkerRecords('lab')).map((r) => r.worker),
      ['w1', 'w2'],
    )
    assert.deepEqual(await listWorkerRecords('other'), [])
    await mkdir(join(stateDir(), 'clusters', 'lab', 'workers'), {recursive: true})
    await writeFile(join(stateDir(), 'clusters', 'lab', 'workers', 'w3.json'), '{"version": 1, "wor')
    await assert.rejects(
      readWorkerRecord('lab', 'w3'),
      (e: Error) => /record of worker w3 .* is unusable/.test(e.message) && !e.message.includes('\n'),
    )
  })

  it('with a cache and the names a watch saw change, reads only those records; the others come from the cache', async () => {
    for (const name of ['w1', 'w2', 'w3']) await recordInstalled('lab', spec(name), {})
    const cache: RecordCache = new Map()
    const phases = async (changed?: ReadonlySet<string>) =>
      (await listWorkerRecords('lab', undefined, cache, changed)).map((r) => `${r.worker}:${r.phase}`)
    assert.deepEqual(await phases(), ['w1:joining', 'w2:joining', 'w3:joining'])
    for (const name of ['w1', 'w2']) await changeWorkerRecord('lab', name, (r) => ({...r!, phase: 'joined'}))
    // Only w2 is said to have changed: w1's new record is not even looked at, w4 (never read) is read.
    await recordInstalled('lab', spec('w4'), {})
    assert.deepEqual(await phases(new Set(['w2'])), ['w1:joining', 'w2:joined', 'w3:joining', 'w4:joining'])
    // Without the names, every record's stamp is checked again.
    assert.deepEqual(await phases(), ['w1:joined', 'w2:joined', 'w3:joining', 'w4:joining'])
    // A removed record leaves the list even when its name is not among the changed ones.
    await changeWorkerRecord('lab', 'w3', () => null)
    assert.deepEqual(await phases(new Set()), ['w1:joined', 'w2:joined', 'w4:joining'])
  })

  it('moves an unusable record aside (never deleted) and still lists the others', async () => {
    await recordInstalled('lab', spec('w1'), {})
    await recordInstalled('lab', spec('w2'), {})
    const dir = join(stateDir(), 'clusters', 'lab', 'workers')
    await writeFile(join(dir, 'w3.json'), 'garbage\0{')
    // Parses, but lacks the spec and installed fields every reader relies on.
    await writeFile(join(dir, 'w4.json'), JSON.stringify({version: 1, worker: 'w4'}))
    const moved: MovedAside[] = []
    assert.deepEqual(
      (await listWorkerRecords('lab', (m) => moved.push(m))).map((r) => r.worker),
      ['w1', 'w2'],
    )
    assert.deepEqual(moved.map((m) => m.worker).sort(), ['w3', 'w4'])
    const names = (await readdir(dir)).sort()
    assert.deepEqual(
      names.filter((n) => !/\.corrupt-/.test(n)),
      ['w1.json', 'w2.json'],
      'no lock or temp file is left',
    )
    const aside = await listMovedAsideRecords('lab')
    assert.equal(aside.length, 2)
    assert.match(aside[0], /w3\.json\.corrupt-\d{4}-/)
    assert.equal(await readFile(aside[0], 'utf8'), 'garbage\0{', 'the moved file keeps what was there')
    assert.deepEqual(aside.sort(), moved.map((m) => m.movedTo).sort())
    // Once aside, the next listing is quiet.
    assert.equal((await listWorkerRecords('lab', (m) => moved.push(m))).length, 2)
    assert.equal(moved.length, 2)
  })

  it('loses no write when processes change one record at the same time (each under the lock)', async function () {
    this.timeout(60_000)
    // Four processes each record 10 entries of their own in w1's `agent` map, read-modify-write each time.
    const script = `
      const {changeWorkerRecord} = await import(${JSON.stringify(RECORDS_JS)})
      const me = process.argv[1]
      for (let i = 0; i < 10; i++)
        await changeWorkerRecord('lab', 'w1', (r) => {
          const base = r ?? {version: 1, worker: 'w1', spec: {name: 'w1', address: '10.213.0.11', ssh: {}}, phase: 'joining', node: 'w1', installed: {}}
          return {...base, installed: {...base.installed, agent: {...base.installed.agent, [me + '-' + i]: true}}}
        })
    `
    const children = ['a', 'b', 'c', 'd'].map((name) =>
      spawn(process.execPath, ['--input-type=module', '-e', script, name], {
        env: {...process.env, HYBRID_STATE_DIR: stateDir()},
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    )
    const codes = await Promise.all(children.map(async (c) => (await once(c, 'exit'))[0] as number))
    assert.deepEqual(codes, [0, 0, 0, 0])
    const agent = (await readWorkerRecord('lab', 'w1'))?.installed.agent ?? {}
    assert.equal(Object.keys(agent).length, 40, 'every write of every process is there')
  })
})
