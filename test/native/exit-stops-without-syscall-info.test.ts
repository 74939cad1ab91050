import assert from 'node:assert/strict'

import {requireTool, skipUnless} from '../helpers/requires.js'
import {runHybrid, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

/**
 * Without PTRACE_GET_SYSCALL_INFO (gVisor, Linux before 5.3) the tracer cannot ask the kernel whether
 * a syscall stop is the entry or the exit of a redirected call. HYBRID_INTERCEPTOR_NO_SYSCALL_INFO
 * makes it do without on this kernel too.
 */
const FALLBACK = {...process.env, HYBRID_INTERCEPTOR_NO_SYSCALL_INFO: '1'}

describe('the exit stop of a redirected call is recognised without PTRACE_GET_SYSCALL_INFO', function () {
  this.timeout(120_000)
  let builds: TraceeBuilds
  let loop: string
  let enosys: string

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    skipUnless(
      this,
      process.arch === 'x64',
      `the ENOSYS fixture makes its syscall in x86_64 assembly; this is ${process.arch}`,
    )
    builds = await TraceeBuilds.create()
    loop = await builds.c('syscall-loop')
    enosys = await builds.c('enosys-after-redirect')
  })

  after(async () => {
    await builds?.remove()
  })

  it('10 000 redirected opens, each one restored at its exit stop', async () => {
    const result = await runHybrid(
      ['intercept', '--stats', '--json', '--', loop, 'open', '10000', '/proc/sys/vm/panic_on_oom'],
      {env: FALLBACK},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom'], 10_000)
  })

  for (const [how, env] of [
    ['without PTRACE_GET_SYSCALL_INFO', FALLBACK],
    ['with it', process.env],
  ] as const) {
    it(`a redirected call that really returns -ENOSYS is not taken for an entry stop (${how})`, async () => {
      const result = await runHybrid(
        ['intercept', '--stats', '--json', '--', enosys, '/proc/sys/vm/panic_on_oom', '1000'],
        {env},
      )
      assert.equal(result.code, 0, `${result.stdout}${result.stderr}`)
      assert.equal(result.stdout, 'ok 1000\n')
      assert.equal(trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom'], 1000)
    })
  }
})
