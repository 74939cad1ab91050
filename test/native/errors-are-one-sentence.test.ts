import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {HybridError} from '../../src/errors.js'
import {spawnIntercepted} from '../../src/interceptor/index.js'
import {requireTool} from '../helpers/requires.js'
import {HYBRID, hybridErrorLines, type RunResult, runHybrid} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

/** One "hybrid: …" sentence on stderr, no stack trace, nothing on stdout, and the exit code. */
function assertOneSentence(result: RunResult, code: number, sentence: RegExp): void {
  assert.equal(result.code, code, result.stderr)
  const lines = hybridErrorLines(result.stderr)
  assert.equal(lines.length, 1, result.stderr)
  assert.match(lines[0], sentence)
  assert.doesNotMatch(result.stderr, /^\s+at /m)
  assert.equal(result.stdout, '')
}

describe('errors a user can act on: one sentence and an exit code', function () {
  this.timeout(60_000)
  let work: string
  let builds: TraceeBuilds | undefined

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'hybrid-errors-test-'))
  })

  after(async () => {
    await builds?.remove()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('a command that does not exist: exit 2', async () => {
    assertOneSentence(
      await runHybrid(['intercept', '--', 'no-such-command-hybrid']),
      2,
      /^hybrid: Command not found: no-such-command-hybrid \(not on PATH\)\.$/,
    )
    assertOneSentence(
      await runHybrid(['intercept', '--', './no/such/file']),
      2,
      /^hybrid: Command not found: \.\/no\/such\/file\.$/,
    )
  })

  it('a file that is not executable: exit 2', async () => {
    await writeFile(join(work, 'plain'), 'just text\n', {mode: 0o644})
    assertOneSentence(await runHybrid(['intercept', '--', join(work, 'plain')]), 2, /is not an executable file\.$/)
  })

  it('no command at all: exit 2', async () => {
    assertOneSentence(await runHybrid(['intercept']), 2, /^hybrid: No command given/)
  })

  it('a rule whose target is missing: exit 2, naming it', async () => {
    assertOneSentence(
      await runHybrid(['intercept', '--rule', `/proc/sys=${join(work, 'nothing-here')}`, '--', 'true']),
      2,
      /^hybrid: The rule target .*nothing-here \(for \/proc\/sys\) does not exist; create it first\.$/,
    )
  })

  it('rules that are not SRC=DST with absolute paths, or a file rule that renames: exit 2', async () => {
    assertOneSentence(await runHybrid(['intercept', '--rule', '/proc/sys', '--', 'true']), 2, /is not SRC=DST/)
    assertOneSentence(
      await runHybrid(['intercept', '--rule', `proc/sys=${work}`, '--', 'true']),
      2,
      /is not an absolute path/,
    )
    await writeFile(join(work, 'other-name'), '0\n')
    assertOneSentence(
      await runHybrid(['intercept', '--rule', `/proc/sys/vm/panic_on_oom=${join(work, 'other-name')}`, '--', 'true']),
      2,
      /keeps the file name/,
    )
  })

  it('the API throws the same HybridError (exit code 2) before starting anything', () => {
    assert.throws(
      () => spawnIntercepted('no-such-command-hybrid', [], {rules: []}),
      (e: unknown) => e instanceof HybridError && e.exitCode === 2 && /Command not found/.test(e.message),
    )
    assert.throws(
      () =>
        spawnIntercepted('true', [], {rules: [{from: '/proc/sys', to: join(work, 'nothing-here'), mode: 'missing'}]}),
      (e: unknown) => e instanceof HybridError && /does not exist/.test(e.message),
    )
  })

  it('a stdio descriptor that is not open: exit 2 from the API', () => {
    assert.throws(
      () => spawnIntercepted('true', [], {rules: [], stdio: [0, 987_654, 2]}),
      (e: unknown) =>
        e instanceof HybridError &&
        e.exitCode === 2 &&
        /^Descriptor 987654, given as the command's stdin, stdout or stderr, is not open\.$/.test(e.message),
    )
  })

  it("with --json the error is a JSON document on stderr, and stdout stays the command's", async () => {
    const result = await runHybrid(['intercept', '--json', '--', 'no-such-command-hybrid'])
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /"message": "Command not found: no-such-command-hybrid \(not on PATH\)\."/)
  })

  it('ptrace refused by a seccomp filter, as container runtimes do: exit 1, naming the setting', async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    const denyPtrace = await builds.c('deny-ptrace')
    const {spawn} = await import('node:child_process')
    const result = await new Promise<RunResult>((resolve) => {
      const child = spawn(denyPtrace, [process.execPath, HYBRID, 'intercept', '--', 'true'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      child.on('close', (code, signal) => resolve({code, signal, stdout, stderr}))
    })
    assertOneSentence(
      result,
      1,
      /^hybrid: ptrace is not permitted here \(EPERM\): hybrid runs under a seccomp filter that refuses ptrace/,
    )
  })
})
