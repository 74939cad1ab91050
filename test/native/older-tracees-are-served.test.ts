import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {requireTool} from '../helpers/requires.js'
import {runHybrid, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

const run = promisify(execFile)

/** What fairness-probe prints: how many opens the older process made and its worst and median wait. */
function parseProbe(stdout: string): {opens: number; worstMs: number; medianMs: number} {
  const m = /^opens (\d+) worst-us (\d+) median-us (\d+)$/m.exec(stdout)
  assert.ok(m, `fairness-probe printed: ${stdout}`)
  return {opens: Number(m[1]), worstMs: Number(m[2]) / 1000, medianMs: Number(m[3]) / 1000}
}

describe('an older tracee is served while six younger ones keep the tracer busy', function () {
  this.timeout(120_000)
  let builds: TraceeBuilds
  let probe: string

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    probe = await builds.c('fairness-probe')
  })

  after(async () => {
    await builds?.remove()
  })

  it("the older process's worst wait for one redirected open: at most 50 ms, or 3× its worst wait without the interceptor", async () => {
    const args = ['/proc/sys/vm/panic_on_oom', '2']
    const without = parseProbe((await run(probe, args)).stdout)
    const result = await runHybrid(['intercept', '--stats', '--json', '--', probe, ...args])
    assert.equal(result.code, 0, result.stderr)
    const under = parseProbe(result.stdout)
    const limit = Math.max(50, 3 * without.worstMs)
    process.stdout.write(
      `      worst wait: ${under.worstMs.toFixed(1)} ms intercepted (median ${under.medianMs.toFixed(2)} ms, ${under.opens} opens), ${without.worstMs.toFixed(1)} ms without; limit ${limit.toFixed(1)} ms\n`,
    )
    const rewrites = trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom']
    assert.ok(rewrites > under.opens, `every open was redirected (${rewrites} rewrites)`)
    assert.ok(under.opens >= 200, `the older process kept opening: ${under.opens} opens in 2 s`)
    assert.ok(under.worstMs <= limit, `the older process waited ${under.worstMs.toFixed(1)} ms for one open`)
  })
})
