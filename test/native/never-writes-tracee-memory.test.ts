import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool} from '../helpers/requires.js'
import {runHybrid, runHybridInGvisor, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

const ROUNDS = 200
const FAKE = 'fake panic_on_oom\n'

/**
 * The canary tracee redirects a path held in a buffer that a canary follows directly, and one in
 * read-only memory, again and again; after each call the buffer, the canary, the literal and (on
 * x86_64) the argument registers must be as they were. It prints one line and exits 0 only then.
 */
describe('a redirect never writes into the tracee (canary after the path, path in read-only memory, registers)', function () {
  this.timeout(180_000)
  let builds: TraceeBuilds
  let canary: string
  let work: string
  let rule: string[]

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    canary = await builds.c('canary')
    work = await mkdtemp(join(tmpdir(), 'hybrid-canary-test-'))
    await mkdir(join(work, 'vm'))
    await writeFile(join(work, 'vm', 'panic_on_oom'), FAKE)
    rule = ['--rule', `/proc/sys/vm/panic_on_oom=${join(work, 'vm', 'panic_on_oom')}`, '--mode', 'always']
  })

  after(async () => {
    await builds?.remove()
    if (work) await rm(work, {recursive: true, force: true})
  })

  // 7 redirected calls a round (4 opens, stat, newfstatat, access), plus the register-checking open on x86_64
  const perRound = process.arch === 'x64' ? 8 : 7

  it('on the host', async () => {
    const result = await runHybrid(['intercept', ...rule, '--stats', '--json', '--', canary, FAKE, String(ROUNDS)])
    assert.equal(result.stdout, `canary intact after ${ROUNDS} rounds\n`, result.stderr)
    assert.equal(result.code, 0)
    assert.equal(trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom'], ROUNDS * perRound)
  })

  it('inside gVisor', async function () {
    requireGvisor(this)
    const result = await runHybridInGvisor(['intercept', ...rule, '--stats', '--json', '--', canary, FAKE, '20'])
    assert.equal(result.stdout, 'canary intact after 20 rounds\n', result.stderr)
    assert.equal(result.code, 0)
    assert.equal(trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom'], 20 * perRound)
  })
})
