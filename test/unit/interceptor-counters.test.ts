import assert from 'node:assert/strict'
import {mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {pino} from 'pino'

import type {InterceptCounters} from '../../src/interceptor/index.js'
import {
  addCounters,
  NO_COUNTERS,
  readCountersFile,
  runningTotals,
  writeCountersFile,
} from '../../src/sandbox/interceptor-counters.js'

const run1: InterceptCounters = {
  stops: 10,
  syscalls: {openat: 7, stat: 3},
  rewrites: {'/proc/sys': 4},
  missed: {},
  signals: 2,
  tracees: 0,
}
const run2: InterceptCounters = {
  stops: 5,
  syscalls: {openat: 1, mkdirat: 2},
  rewrites: {'/proc/sys': 1},
  missed: {'/proc/sys': 1},
  signals: 0,
  tracees: 3,
}

describe('interceptor counters file: what the supervisor writes and `status` reads', () => {
  let dir: string
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'hybrid-counters-'))))
  afterEach(async () => rm(dir, {recursive: true, force: true}))

  it('sums runs across restarts name by name; tracees are only the running one', () => {
    assert.deepEqual(runningTotals(addCounters(NO_COUNTERS, run1), run2), {
      stops: 15,
      syscalls: {openat: 8, stat: 3, mkdirat: 2},
      rewrites: {'/proc/sys': 5},
      missed: {'/proc/sys': 1},
      signals: 2,
      tracees: 3,
    })
  })

  it('reads back what was written, and the file is readable by its owner only', async () => {
    const file = join(dir, 'counters.json')
    await writeCountersFile(file, {k3sPid: 1234, restarts: 1, counters: run2}, pino({level: 'silent'}))
    const read = await readCountersFile(file)
    assert.ok(read)
    assert.ok(Math.abs(Date.parse(read.updatedAt) - Date.now()) < 60_000)
    assert.deepEqual({...read, updatedAt: 'x'}, {updatedAt: 'x', k3sPid: 1234, restarts: 1, counters: run2})
    assert.equal((await stat(file)).mode & 0o777, 0o600)
  })

  it('no file, or a file that is not one, reads as none', async () => {
    assert.equal(await readCountersFile(join(dir, 'missing.json')), undefined)
    await writeFile(join(dir, 'garbled.json'), '{"updatedAt": 3')
    assert.equal(await readCountersFile(join(dir, 'garbled.json')), undefined)
    await writeFile(join(dir, 'other.json'), '{"counters": {}}')
    assert.equal(await readCountersFile(join(dir, 'other.json')), undefined)
  })
})
