import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {WorkerSpec} from '../../src/inventory/model.js'
import {createLogger} from '../../src/log/logger.js'
import {WorkerTunnels} from '../../src/sandbox/worker-tunnels.js'
import {clusterPaths} from '../../src/state/cluster-state.js'
import {readTunnels} from '../../src/state/tunnel-status.js'
import {changeWorkerRecord, newWorkerRecord} from '../../src/state/worker-records.js'
import {isRoot, skipUnless} from '../helpers/requires.js'

const CLUSTER = 'tunnels'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A worker nothing answers for: its tunnel (when its record asks for one) stays connecting or down. */
function spec(name: string): WorkerSpec {
  return {
    name,
    address: '127.0.0.1',
    ssh: {user: 'root', port: 9, connectTimeoutSeconds: 1, hostKeyPolicy: 'strict'},
  } as unknown as WorkerSpec
}

/**
 * The supervisor's half of the tunnels follows the worker records without reading them over and over: in
 * a state directory on a tmpfs mounted `strictatime` (every read of a file moves its access time), an
 * unchanged record is not read again, and a changed one is noticed within a moment.
 */
describe('the supervisor following the worker records', function () {
  this.timeout(60_000)
  let dir: string
  let mounted = false
  let tunnels: WorkerTunnels | undefined
  const savedStateDir = process.env.HYBRID_STATE_DIR

  before(async function () {
    skipUnless(this, isRoot(), 'mounting a tmpfs with strictatime needs root; CI runs as root')
    dir = await mkdtemp(join(tmpdir(), 'hybrid-worker-tunnels-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'strictatime,mode=0700,size=16m', 'tmpfs', dir])
    mounted = true
    process.env.HYBRID_STATE_DIR = dir
  })

  after(async () => {
    await tunnels?.stop()
    if (savedStateDir === undefined) delete process.env.HYBRID_STATE_DIR
    else process.env.HYBRID_STATE_DIR = savedStateDir
    if (mounted) execFileSync('umount', [dir])
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('reads a record again only once it changed, and opens the tunnel a changed record asks for at once', async () => {
    const names = ['w1', 'w2', 'w3']
    for (const name of names) await changeWorkerRecord(CLUSTER, name, () => newWorkerRecord(spec(name)))
    const atime = async (name: string) =>
      (await stat(join(clusterPaths(CLUSTER).workers, `${name}.json`), {bigint: true})).atimeNs
    const logger = createLogger({format: 'json', level: 'error', command: 'test', file: false})
    tunnels = new WorkerTunnels(CLUSTER, logger)
    tunnels.start()
    for (let i = 0; !(await readTunnels(CLUSTER)) && i < 100; i++) await sleep(50)
    assert.ok(await readTunnels(CLUSTER), 'tunnels.json is written once the records are read')
    const first = await Promise.all(names.map(atime))

    // Several of the old 300 ms polls' worth of time: nothing changed, so nothing is read.
    await sleep(1500)
    assert.deepEqual(await Promise.all(names.map(atime)), first, 'unchanged records were read again')

    // w2 now asks for a tunnel: its keeper opens one at once (no poll to wait for), and w1 and w3 stay unread.
    const asked = Date.now()
    await changeWorkerRecord(CLUSTER, 'w2', (record) => ({
      ...record!,
      tunnel: {bindAddress: '100.64.255.1', bindPort: 6443, targetPort: 6443},
    }))
    let listed = false
    while (!listed && Date.now() - asked < 2000) {
      listed = (await readTunnels(CLUSTER))?.tunnels.some((t) => t.worker === 'w2') ?? false
      if (!listed) await sleep(20)
    }
    assert.ok(listed, 'the tunnel w2 asks for is in tunnels.json within 2 s')
    await sleep(500)
    const after = await Promise.all(names.map(atime))
    assert.deepEqual([after[0], after[2]], [first[0], first[2]], 'records that did not change were read again')
  })
})
