import {strict as assert} from 'node:assert'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtemp, open, readdir, readFile, rm, stat, truncate, utimes, writeFile} from 'node:fs/promises'
import {spawn} from 'node:child_process'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {SshConnections} from '../../src/remote/connections.js'
import type {RemoteError} from '../../src/remote/errors.js'
import {fileSha256} from '../../src/remote/sftp-upload.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {labWorker} from './lab-workers.js'

const UPLOADER = fileURLToPath(new URL('./uploader.js', import.meta.url))

const SUDO_PASSWORD = 'up load pass'

/** SFTP uploads to real sshd: checked, skipped when already there, and never half a file under the real name. */
describe('SFTP upload (lab)', function () {
  this.timeout(180_000)
  let lab: Lab
  let dir: string
  let big: string

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-upload-'))
    // 256 MiB: long enough on a loopback link for sshd to be killed while it is under way. Random bytes
    // at the start and the end, so a truncated or shifted copy cannot have the same digest.
    big = join(dir, 'k3s-big')
    const handle = await open(big, 'w')
    await handle.write(randomBytes(1 << 20), 0, 1 << 20, 0)
    await handle.write(randomBytes(1 << 20), 0, 1 << 20, 255 * (1 << 20))
    await handle.close()
    await truncate(big, 256 * (1 << 20))
    lab = await createLab({
      hosts: [{name: 'u1', users: [{name: 'ann', password: SUDO_PASSWORD, sudoers: 'ALL=(ALL) ALL'}]}],
    })
  })
  after(async () => {
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  const u1 = () => lab.host('u1')

  it('uploads with progress, checks the digest there, and skips a file that already has it', async () => {
    const small = join(dir, 'small')
    await writeFile(small, randomBytes(3 * (1 << 20) + 17))
    const connections = new SshConnections({})
    try {
      const host = await connections.host(labWorker(lab, u1()))
      const progress: number[] = []
      const first = await host.upload(small, '/usr/local/bin/tool', {
        mode: 0o755,
        onProgress: (done) => progress.push(done),
      })
      assert.equal(first.skipped, false)
      assert.equal(first.sha256, await fileSha256(small))
      assert.ok(progress.length > 1 && progress.every((n, i) => i === 0 || n >= progress[i - 1]), 'progress grows')
      assert.equal(progress.at(-1), first.bytes)
      const onMachine = u1().pathOnMachine('/usr/local/bin/tool')
      assert.deepEqual(await readFile(onMachine), await readFile(small))
      assert.equal((await stat(onMachine)).mode & 0o777, 0o755)
      const mtime = (await stat(onMachine)).mtimeMs
      const again = await host.upload(small, '/usr/local/bin/tool', {mode: 0o755})
      assert.equal(again.skipped, true)
      assert.equal((await stat(onMachine)).mtimeMs, mtime, 'not rewritten')
      assert.deepEqual(await readdir(u1().pathOnMachine('/usr/local/bin')), ['tool'], 'no temp file left')
    } finally {
      await connections.closeAll()
    }
  })

  it('sends the bytes the caller holds, asked for once, not the file read again from disk', async () => {
    const file = join(dir, 'held')
    const held = randomBytes(3 * (1 << 20) + 17)
    await writeFile(file, held)
    const sha256 = await fileSha256(file)
    // The file on disk changes after the caller read it: only the bytes it holds may be sent.
    await writeFile(file, randomBytes(held.length))
    const connections = new SshConnections({})
    try {
      const host = await connections.host(labWorker(lab, u1()))
      const progress: number[] = []
      let asked = 0
      const result = await host.upload(file, '/usr/local/bin/held', {
        mode: 0o755,
        sha256,
        sha256There: null,
        contents: () => (asked++, Promise.resolve(held)),
        onProgress: (done) => progress.push(done),
      })
      assert.deepEqual([result.skipped, result.sha256, asked], [false, sha256, 1])
      assert.deepEqual(await readFile(u1().pathOnMachine('/usr/local/bin/held')), held)
      assert.equal(progress.at(-1), held.length)
      assert.ok(progress.length > 1 && progress.every((n, i) => i === 0 || n > progress[i - 1]), 'progress grows')
      assert.equal((await stat(u1().pathOnMachine('/usr/local/bin/held'))).mode & 0o777, 0o755)
      assert.deepEqual(
        (await readdir(u1().pathOnMachine('/usr/local/bin'))).filter((name) => name.includes('held')),
        ['held'],
        'no temp file left',
      )
    } finally {
      await connections.closeAll()
    }
  })

  it('as a user with sudo and a password: staged in its home, placed as root, staging removed', async () => {
    const small = join(dir, 'small-sudo')
    await writeFile(small, randomBytes(1 << 20))
    const connections = new SshConnections({HYBRID_SUDO_PASSWORD: SUDO_PASSWORD})
    try {
      const host = await connections.host(labWorker(lab, u1(), {user: 'ann', sudo: 'password'}))
      const result = await host.upload(small, '/usr/local/bin/agent-tool', {
        mode: 0o750,
        owner: 'root:root',
        sudo: true,
      })
      assert.equal(result.skipped, false)
      const placed = await stat(u1().pathOnMachine('/usr/local/bin/agent-tool'))
      assert.equal(placed.uid, 0)
      assert.equal(placed.mode & 0o777, 0o750)
      assert.deepEqual(await readdir(u1().pathOnMachine('/home/ann/.cache/hybrid/uploads')), [])
      assert.equal((await host.upload(small, '/usr/local/bin/agent-tool', {mode: 0o750, sudo: true})).skipped, true)
    } finally {
      await connections.closeAll()
    }
  })

  it('sshd killed mid-upload: the old file stays whole under the real name, and the next run completes it', async () => {
    const target = '/usr/local/bin/k3s'
    const onMachine = u1().pathOnMachine(target)
    await writeFile(onMachine, 'old k3s\n', {mode: 0o755})
    const digest = await fileSha256(big)
    const total = (await stat(big)).size

    const first = new SshConnections({})
    let killed: Promise<void> | undefined
    try {
      const host = await first.host(labWorker(lab, u1()))
      await assert.rejects(
        host.upload(big, target, {
          mode: 0o755,
          onProgress: (done) => {
            if (!killed && done > total / 10) killed = u1().stopSshd('SIGKILL')
          },
        }),
        (error: RemoteError) => {
          assert.ok(['UPLOAD_FAILED', 'SSH_CONNECTION_LOST'].includes(error.code), `${error.code}: ${error.message}`)
          assert.ok(error.message.startsWith('u1: '), error.message)
          return true
        },
      )
      assert.ok(killed, 'sshd was killed while the upload was under way')
      await killed
    } finally {
      await first.closeAll()
    }
    assert.equal(await readFile(onMachine, 'utf8'), 'old k3s\n', 'the real name still holds the whole old file')
    const leftovers = (await readdir(u1().pathOnMachine('/usr/local/bin'))).filter(
      (f) => f.includes('k3s') && f !== 'k3s',
    )
    assert.equal(leftovers.length, 1, 'only the temp file of the broken upload is left')
    assert.ok((await stat(join(u1().pathOnMachine('/usr/local/bin'), leftovers[0]))).size < total, 'and it is partial')

    // Nobody writes to the broken upload's temp file any more: once that has lasted over two minutes
    // (set back here rather than waited for), the next upload removes it.
    const old = new Date(Date.now() - 10 * 60_000)
    await utimes(join(u1().pathOnMachine('/usr/local/bin'), leftovers[0]), old, old)
    await u1().startSshd()
    const second = new SshConnections({})
    try {
      const host = await second.host(labWorker(lab, u1()))
      const result = await host.upload(big, target, {mode: 0o755})
      assert.deepEqual(result, {skipped: false, bytes: total, sha256: digest})
    } finally {
      await second.closeAll()
    }
    assert.equal(
      createHash('sha256')
        .update(await readFile(onMachine))
        .digest('hex'),
      digest,
    )
    assert.deepEqual(
      await readdir(u1().pathOnMachine('/usr/local/bin')).then((l) => l.filter((f) => f.endsWith('.hybrid-upload'))),
      [],
    )
  })

  it('the uploader killed while the worker checks its copy: nothing is moved into place after it', async () => {
    const target = '/usr/local/bin/k3s'
    const onMachine = u1().pathOnMachine(target)
    await writeFile(onMachine, 'old k3s\n', {mode: 0o755})
    const child = spawn(process.execPath, [UPLOADER, JSON.stringify(labWorker(lab, u1())), big, target], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const ended = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`${code ?? signal}`)))
    try {
      // The 256 MiB copy is in place under its temp name once sha256sum runs on the worker: kill then.
      const deadline = Date.now() + 120_000
      let checking = false
      while (!checking && Date.now() < deadline && child.exitCode === null) {
        checking = (await u1().exec(['pgrep', '-x', 'sha256sum'])).code === 0
        if (!checking) await new Promise((resolve) => setTimeout(resolve, 10))
      }
      assert.ok(checking, 'the worker was checking the copy when the uploader was killed')
      child.kill('SIGKILL')
      assert.equal(await ended, 'SIGKILL')
    } finally {
      child.kill('SIGKILL')
    }
    // The worker's program ends as soon as its running child does; then nothing may change any more.
    const settled = Date.now() + 15_000
    while (Date.now() < settled && (await u1().exec(['pgrep', '-x', 'sha256sum'])).code === 0)
      await new Promise((resolve) => setTimeout(resolve, 100))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal(await readFile(onMachine, 'utf8'), 'old k3s\n', 'the real name still holds the old file')
    // The staged upload itself may stay: nobody writes to it, so the next upload sweeps it (the test above).
    const copies = (await readdir(u1().pathOnMachine('/usr/local/bin'))).filter(
      (f) => f.startsWith('.k3s.') && !f.endsWith('.hybrid-upload'),
    )
    assert.deepEqual(copies, [], 'no other copy is left beside it')
  })
})
