import assert from 'node:assert/strict'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool} from '../helpers/requires.js'
import {runHybrid, runHybridInGvisor, type RunResult, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

describe("the tracer reads a path from the tracee's memory, or makes the call fail", function () {
  this.timeout(300_000)
  let builds: TraceeBuilds
  let manyThreads: string
  let loop: string

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    manyThreads = await builds.c('many-threads')
    loop = await builds.c('syscall-loop')
  })

  after(async () => {
    await builds?.remove()
  })

  // No reader could read it, so the kernel could not either: EFAULT, counted, never the real path.
  const unreadable = (result: RunResult) => {
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(trailingJson(result.stderr).counters.missed, {'(path unreadable)': 100})
  }

  it('a path at an unmapped address: the call fails with EFAULT and is counted as missed', async () => {
    unreadable(await runHybrid(['intercept', '--stats', '--json', '--', loop, 'badpath', '100']))
  })

  it('the same inside gVisor, which reads through /proc/PID/mem', async function () {
    requireGvisor(this)
    unreadable(await runHybridInGvisor(['intercept', '--stats', '--json', '--', loop, 'badpath', '100']))
  })

  it('inside gVisor, a 300-thread tracee, every thread opening a redirected path: the tracer holds at most 64 descriptors', async function () {
    requireGvisor(this)
    const result = await runHybridInGvisor(
      ['intercept', '--stats', '--json', '--', manyThreads, '/proc/sys/vm/panic_on_oom', '300'],
      280_000,
    )
    assert.equal(result.code, 0, result.stderr)
    const m = /^threads 300 opens (\d+) tracer-fds (\d+)$/m.exec(result.stdout)
    assert.ok(m, result.stdout)
    const [opens, fds] = [Number(m[1]), Number(m[2])]
    process.stdout.write(`      the tracer held ${fds} descriptors while 300 threads made ${opens} redirected opens\n`)
    assert.ok(fds <= 64, `the tracer held ${fds} descriptors`)
    const {counters} = trailingJson(result.stderr)
    assert.equal(counters.rewrites['/proc/sys/vm/panic_on_oom'], opens, 'every open was redirected')
    assert.deepEqual(counters.missed, {}, 'no path went unread')
  })
})
