import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {DigestMismatch, placeVia, type RawRun, ShellFileError, writeFileVia} from '../../src/remote/shell-files.js'

/** The shell programs of shell-files.ts run on this machine, as a Host runs them over SSH. */
const run: RawRun = (argv, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe']})
    if (options.stdin !== undefined) child.stdin.write(options.stdin)
    // A lifeline is held open until the program exits, as the hosts hold it.
    if (options.lifeline) child.on('exit', () => child.stdin.end())
    else child.stdin.end()
    const out: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (exitCode) => resolve({exitCode, stdout: Buffer.concat(out), stderr}))
  })

const sha = (text: string) => createHash('sha256').update(text).digest('hex')

/** The staged file is copied beside the target and its digest checked in the command that renames it. */
describe('placing an upload checks the digest of the copy it moves', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-place-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a staged file changed after it was checked is not moved into place, and its copy is removed', async () => {
    const staged = join(dir, 'staged.part')
    const target = join(dir, 'bin', 'k3s')
    await writeFile(staged, 'good k3s\n')
    const expected = sha('good k3s\n')
    // Changed by someone between the transfer's check and the move (the login user owns the staging file).
    await writeFile(staged, 'evil k3s\n')
    await assert.rejects(
      placeVia(run, staged, target, {mode: 0o755, sameDir: false, sha256: expected}),
      (error: DigestMismatch) => error instanceof DigestMismatch && error.actual === sha('evil k3s\n'),
    )
    assert.deepEqual(await readdir(join(dir, 'bin')), [], 'neither the target nor the copy is there')

    await writeFile(staged, 'good k3s\n')
    await placeVia(run, staged, target, {mode: 0o755, sameDir: false, sha256: expected})
    assert.equal(await readFile(target, 'utf8'), 'good k3s\n')
  })

  it('in the same directory too: a temp file with the wrong digest is removed, the target keeps its content', async () => {
    const target = join(dir, 'k3s')
    await writeFile(target, 'old k3s\n')
    const temp = join(dir, '.k3s.abc.hybrid-upload')
    await writeFile(temp, 'half a k3s')
    await assert.rejects(
      placeVia(run, temp, target, {mode: 0o755, sameDir: true, sha256: sha('new k3s\n')}),
      DigestMismatch,
    )
    assert.deepEqual(await readdir(dir), ['k3s'])
    assert.equal(await readFile(target, 'utf8'), 'old k3s\n')
  })
})

/** As `run`, with standard input given, but only the first `keep` bytes of it arrive (a stream cut short). */
const runCut =
  (keep: number): RawRun =>
  (argv, options) =>
    new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe']})
      const out: Buffer[] = []
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => out.push(d))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      child.on('error', reject)
      child.on('close', (exitCode) => resolve({exitCode, stdout: Buffer.concat(out), stderr}))
      child.stdin.end(Buffer.from(options?.stdin ?? '').subarray(0, keep))
    })

describe('a streamed file is checked (size, sha256) before it replaces the old one', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-write-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a stream cut short: the old file stays as it was, no temp file is left, one sentence says why', async () => {
    const target = join(dir, 'config.yaml')
    await writeFile(target, 'old: config\n')
    const sent = 'new: config\nwith: more lines\n'
    await assert.rejects(writeFileVia(runCut(10), target, sent, {mode: 0o600}), (error: Error) => {
      assert.ok(error instanceof ShellFileError)
      assert.match(error.message, /has 10 bytes and sha256 [0-9a-f]{64}, not the 29 bytes and sha256 [0-9a-f]{64} sent/)
      assert.equal(error.message.split('\n').length, 1)
      return true
    })
    assert.deepEqual(await readdir(dir), ['config.yaml'])
    assert.equal(await readFile(target, 'utf8'), 'old: config\n')

    await writeFileVia(runCut(1000), target, sent, {mode: 0o600})
    assert.equal(await readFile(target, 'utf8'), sent)
  })
})
