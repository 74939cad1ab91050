import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {RemoteError} from '../../src/remote/errors.js'
import {LocalHost} from '../../src/remote/local-host.js'
import {AWKWARD_VALUES} from './remote-quote.test.js'

/** The sandbox's own machine as a Host: the same surface as over SSH, on real files and processes. */
describe('LocalHost', () => {
  let dir: string
  const host = new LocalHost()
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-local-host-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('runs argument arrays unchanged, with stdin, exit code and stderr', async () => {
    const echoed = await host.check(['printf', '%s\\0', ...AWKWARD_VALUES])
    assert.deepEqual(echoed.stdout.split('\0').slice(0, -1), AWKWARD_VALUES)
    const result = await host.run(['sh', '-c', 'cat; echo no >&2; exit 4'], {stdin: 'in'})
    assert.deepEqual([result.exitCode, result.stdout, result.stderr], [4, 'in', 'no\n'])
    await assert.rejects(host.check(['sh', '-c', 'echo why >&2; exit 1']), (error: RemoteError) => {
      assert.equal(error.code, 'REMOTE_COMMAND_FAILED')
      assert.equal(error.message, 'local: sh failed: why')
      return true
    })
  })

  it('writes whole files with their mode, reads and stats them, and reports missing ones as undefined', async () => {
    const file = join(dir, 'etc', 'token')
    await host.writeFile(file, 'secret\n', {mode: 0o600})
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal((await host.readFile(file))?.toString(), 'secret\n')
    assert.deepEqual(await host.stat(file), {
      type: 'file',
      size: 7,
      mode: 0o600,
      uid: process.getuid!(),
      gid: process.getgid!(),
    })
    assert.equal(await host.readFile(join(dir, 'none')), undefined)
    assert.equal(await host.stat(join(dir, 'none')), undefined)
  })

  it('uploads through a temp name, and skips a file that already has the digest', async () => {
    const source = join(dir, 'k3s-source')
    await writeFile(source, 'binary bytes')
    const target = join(dir, 'bin', 'k3s')
    const first = await host.upload(source, target, {mode: 0o755})
    assert.equal(first.skipped, false)
    assert.equal(await readFile(target, 'utf8'), 'binary bytes')
    assert.equal((await stat(target)).mode & 0o777, 0o755)
    assert.equal((await host.upload(source, target, {mode: 0o755})).skipped, true)
    assert.deepEqual(await readdir(join(dir, 'bin')), ['k3s'])
  })

  it('gathers the same facts as over SSH', async () => {
    const facts = await host.facts({advertiseAddress: '100.64.255.1', apiPort: 6443})
    assert.ok(facts.arch.machine.length > 0)
    assert.ok(['systemd', 'openrc', 'none'].includes(facts.init.system))
    assert.equal(facts.ports.length, 3)
    assert.equal(facts.advertiseAddress?.address, '100.64.255.1')
  })
})
