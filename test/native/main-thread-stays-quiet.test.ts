import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {spawnIntercepted, writeProcSysTree} from '../../src/interceptor/index.js'
import {requireTool} from '../helpers/requires.js'
import {TraceeBuilds} from './helpers/tracees.js'

/** Context switches of this process's main thread so far: each one is a wake-up (or a preemption). */
function mainThreadSwitches(): number {
  const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8')
  const count = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1])
  return count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches')
}

describe("ptrace stops do not wake node's main thread, even with a live child_process", function () {
  this.timeout(180_000)
  let builds: TraceeBuilds
  let loop: string
  let tree: string
  let child: ChildProcess | undefined

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    loop = await builds.c('syscall-loop')
    tree = await mkdtemp(join(tmpdir(), 'hybrid-quiet-test-'))
  })

  after(async () => {
    child?.kill('SIGKILL')
    await builds?.remove()
    if (tree) await rm(tree, {recursive: true, force: true})
  })

  it('under 1 main-thread wake-up per 1000 stops through 100 000 redirected opens', async () => {
    // A live child_process installs libuv's SIGCHLD handler, as the control-plane supervisor's do.
    child = spawn('sleep', ['600'], {stdio: 'ignore'})
    await new Promise((resolve) => child!.once('spawn', resolve))
    const rules = await writeProcSysTree(tree)
    const before = mainThreadSwitches()
    const traced = spawnIntercepted(loop, ['open', '100000', '/proc/sys/vm/panic_on_oom'], {rules})
    assert.deepEqual(await traced.exited, {code: 0, signal: null})
    await traced.finished
    const wakeUps = mainThreadSwitches() - before
    const {stops, rewrites} = traced.counters()
    process.stdout.write(
      `      ${wakeUps} main-thread context switches for ${stops} stops: ${((wakeUps * 1000) / stops).toFixed(2)} per 1000\n`,
    )
    assert.equal(rewrites['/proc/sys/vm/panic_on_oom'], 100_000)
    assert.ok(stops >= 200_000, `${stops} stops`)
    assert.ok(wakeUps * 1000 < stops, `${wakeUps} main-thread wake-ups for ${stops} stops`)
  })
})
