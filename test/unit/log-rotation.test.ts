import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLogger} from '../../src/log/logger.js'
import {rotateByCopy} from '../../src/log/rotating-file.js'

describe('log rotation (log/rotating-file)', () => {
  let dir: string
  const saved = process.env.HYBRID_LOG_ROTATE_BYTES
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-rotate-'))
    process.env.HYBRID_LOG_ROTATE_BYTES = '4096'
  })
  afterEach(async () => {
    if (saved === undefined) delete process.env.HYBRID_LOG_ROTATE_BYTES
    else process.env.HYBRID_LOG_ROTATE_BYTES = saved
    await rm(dir, {recursive: true, force: true})
  })

  it('a long-lived logger rotates its file by size into .1 .. .3, losing and cutting no line of the kept files', async () => {
    const path = join(dir, 'hybrid.log')
    // One logger for the whole run, as the supervisor keeps one: the old code rotated only when a command started.
    const logger = createLogger({format: 'json', level: 'fatal', command: 'up', filePath: path})
    const total = 400
    for (let i = 0; i < total; i++) logger.info({seq: i, pad: 'x'.repeat(40)}, `line ${i}`)
    assert.deepEqual((await readdir(dir)).sort(), ['hybrid.log', 'hybrid.log.1', 'hybrid.log.2', 'hybrid.log.3'])
    const seqs: number[] = []
    for (const name of ['hybrid.log.3', 'hybrid.log.2', 'hybrid.log.1', 'hybrid.log']) {
      const file = join(dir, name)
      assert.equal((await stat(file)).mode & 0o777, 0o600, `${name} is 0600`)
      const text = await readFile(file, 'utf8')
      assert.ok(text === '' || text.endsWith('\n'), `${name} ends with a whole line`)
      for (const line of text.split('\n').filter(Boolean)) seqs.push((JSON.parse(line) as {seq: number}).seq)
      if (name !== 'hybrid.log')
        assert.ok(text.length > 4096 && text.length < 4096 + 400, `${name} rotated just past the limit`)
    }
    // The kept files hold a contiguous run of lines ending with the last one: none lost or doubled between files.
    const last = seqs[seqs.length - 1]
    assert.equal(last, total - 1)
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => last - seqs.length + 1 + i),
    )
    assert.ok(seqs.length > 80, `at least three files' worth kept (${seqs.length} lines)`)
  })

  it("k3s's log, written by another process through its own O_APPEND descriptor: copied to .1 and truncated in place; the writer goes on at the new start, no line cut or out of order", async () => {
    const path = join(dir, 'k3s.log')
    await writeFile(path, '', {mode: 0o600}) // as the supervisor opens it for k3s
    // A writer that outlives any rotation, as k3s outlives its supervisor: its descriptor opened once, by `>>`.
    const writer = spawn('sh', [
      '-c',
      // Paced (a pause after each 100 lines, ~4.8 KiB) so that a loaded machine still sees several rotations.
      `i=0; while [ $i -lt 3000 ]; do echo "line $i ${'y'.repeat(40)}"; i=$((i+1)); ` +
        `[ $((i % 100)) -eq 0 ] && sleep 0.02; done >> ${path}`,
    ])
    const ended = new Promise((resolve) => writer.on('exit', resolve))
    let rotations = 0
    while (writer.exitCode === null) {
      if (rotateByCopy(path, 4096)) rotations++
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await ended
    assert.ok(rotations >= 2, `rotated ${rotations} times while the writer wrote`)
    const seqs: number[] = []
    const kept = ['k3s.log.3', 'k3s.log.2', 'k3s.log.1', 'k3s.log'].slice(-1 - Math.min(rotations, 3))
    assert.deepEqual((await readdir(dir)).sort(), [...kept].sort(), 'the live file and up to three rotated ones')
    for (const name of kept) {
      const file = join(dir, name)
      assert.equal((await stat(file)).mode & 0o777, 0o600, `${name} is 0600`)
      const text = await readFile(file, 'utf8')
      assert.ok(!text.includes('\0'), `${name} has no hole: the writer went on at the start of the truncated file`)
      for (const line of text.split('\n').filter(Boolean)) {
        assert.match(line, /^line \d+ y{40}$/, `${name} holds whole lines`)
        seqs.push(Number(line.split(' ')[1]))
      }
    }
    assert.equal(seqs.at(-1), 2999, 'the last line is in the live file')
    assert.ok(
      seqs.every((n, i) => i === 0 || n > seqs[i - 1]),
      'the kept lines are in the order written, none doubled',
    )
  })
})
