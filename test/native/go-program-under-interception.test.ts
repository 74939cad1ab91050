import assert from 'node:assert/strict'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool} from '../helpers/requires.js'
import {type RunResult, runHybrid, runHybridInGvisor, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

/** How long the soak runs; `npm test` keeps it short, a release check sets minutes. */
const SOAK_SECONDS = Number(process.env.HYBRID_SOAK_SECONDS ?? 20)

/**
 * The Go tracee checks every read itself (from the fake tree, with the values the default rules
 * serve) and exits 1 on the first wrong one; a corrupted heap or mutex ends it with a runtime
 * "fatal error". At the end it execs cat from a thread that is not the main one.
 */
function assertGoTraceeRan(result: RunResult, where: string): void {
  assert.doesNotMatch(result.stderr, /fatal error|panic:|FAIL/, `the Go tracee failed ${where}`)
  assert.equal(result.code, 0, `exit ${result.code} ${where}: ${result.stderr}`)
  const summary = /reads=(\d+) writes=(\d+) execs=(\d+) spins=(\d+) sigurg=(\d+)/.exec(result.stdout)
  assert.ok(summary, result.stdout)
  const [reads, writes, execs, , sigurg] = summary.slice(1).map(Number)
  process.stdout.write(`      ${where}: ${summary[0]}\n`)
  assert.ok(reads > 0 && writes > 0 && execs > 0, summary[0])
  assert.ok(sigurg > 0, 'the runtime preempted goroutines with SIGURG, and the signals reached them')
  assert.match(
    result.stdout,
    /exec from thread (\d+) of process (\d+)\n1\n$/,
    "cat, exec'ed from a non-main thread, read panic_on_oops from the fake tree",
  )
  const [, tid, pid] = /exec from thread (\d+) of process (\d+)/.exec(result.stdout)!
  assert.notEqual(tid, pid)
  const {counters} = trailingJson(result.stderr)
  assert.ok(counters.signals >= sigurg, `signals passed: ${counters.signals}`)
  for (const path of ['/proc/sys/vm/overcommit_memory', '/proc/sys/kernel/panic', '/proc/sys/kernel/panic_on_oops'])
    assert.ok(counters.rewrites[path] > 0, path)
  assert.deepEqual(counters.missed, {})
}

describe('a multi-threaded Go program under the interceptor', function () {
  let builds: TraceeBuilds
  let goTracee: string

  before(async function () {
    this.timeout(300_000)
    requireTool(this, 'go', 'golang-go')
    builds = await TraceeBuilds.create()
    goTracee = await builds.go('go-tracee')
  })

  after(async () => {
    await builds?.remove()
  })

  const run = (seconds: number, inGvisor = false) => {
    const args = ['intercept', '--stats', '--json', '--', goTracee, '-duration', `${seconds}s`]
    return inGvisor
      ? runHybridInGvisor(args, (seconds + 120) * 1000)
      : runHybrid(args, {timeoutMs: (seconds + 120) * 1000})
  }

  it("on the host: concurrent reads and writes, a child exec'ed from a goroutine, preemption signals, exec from a thread", async function () {
    this.timeout(180_000)
    assertGoTraceeRan(await run(5), 'on the host')
  })

  it('inside gVisor: the same', async function () {
    this.timeout(300_000)
    requireGvisor(this)
    assertGoTraceeRan(await run(8, true), 'inside gVisor')
  })

  it(`soak: runs HYBRID_SOAK_SECONDS (${SOAK_SECONDS} s now) on the host without a runtime fatal error`, async function () {
    this.timeout((SOAK_SECONDS + 180) * 1000)
    assertGoTraceeRan(await run(SOAK_SECONDS), `soak of ${SOAK_SECONDS} s`)
  })
})
