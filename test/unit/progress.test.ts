import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import pino from 'pino'

import {clearSecrets, registerSecret} from '../../src/log/redact.js'
import {createProgress, progressMode, renderRows, type RowState} from '../../src/ui/index.js'
import {requireTool} from '../helpers/requires.js'

const child = fileURLToPath(new URL('plan-child.js', import.meta.url))

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino(
    {level: 'debug'},
    {write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>)},
  )
  return {lines, logger}
}

function run(file: string, args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(file, args, {env: {...process.env, STEP_MS: '400'}}, (error, stdout, stderr) =>
      resolve({code: error ? (error.code as number) : 0, stdout, stderr}),
    )
  })
}

describe('progress', () => {
  afterEach(() => clearSecrets())

  it('chooses rows on a terminal, JSON events with --json, plain lines elsewhere', () => {
    assert.equal(progressMode({json: false, logFormat: 'pretty', stderrIsTTY: true}), 'tty')
    assert.equal(progressMode({json: true, logFormat: 'json', stderrIsTTY: true}), 'json')
    assert.equal(progressMode({json: false, logFormat: 'pretty', stderrIsTTY: false}), 'plain')
    assert.equal(progressMode({json: false, logFormat: 'json', stderrIsTTY: true}), 'plain')
    assert.equal(progressMode({json: false, logFormat: 'pretty', stderrIsTTY: true, term: 'dumb'}), 'plain')
  })

  describe('rows', () => {
    const rows: RowState[] = [
      {
        host: 'w1',
        status: 'running',
        step: 'upload k3s',
        startedAt: 0,
        bytes: {done: 35 * 1024 * 1024, total: 70 * 1024 * 1024},
      },
      {host: 'worker-2', status: 'done', step: 'wait ready', startedAt: 0, endedAt: 4100},
      {host: 'w3', status: 'failed', step: 'connect', startedAt: 1000, endedAt: 3000, note: 'connection refused'},
      {host: 'w4', status: 'waiting'},
    ]

    it('show host, step, elapsed time, bytes of uploads and the error', () => {
      const frame = renderRows('install agents', rows, 12_300, 120).split('\n')
      assert.deepEqual(frame, [
        'install agents: 2/4 hosts finished, 1 failed',
        '› w1        upload k3s    12.3s  35.0 MiB / 70.0 MiB 50%',
        '✓ worker-2  wait ready     4.1s',
        '✗ w3        connect        2.0s  connection refused',
        '  w4        waiting',
      ])
    })

    it('are cut to the terminal width so no row wraps', () => {
      for (const line of renderRows('install agents', rows, 12_300, 30).split('\n')) assert.ok(line.length <= 29, line)
    })

    it('on a short terminal show running and failed hosts first and count the rest', () => {
      const frame = renderRows('install agents', rows, 12_300, 120, 3).split('\n')
      assert.deepEqual(
        frame.slice(1).map((l) => l.slice(0, 12).trim()),
        ['› w1', '✗ w3', '… 2 more'],
      )
    })
  })

  it('--json: one redacted JSON event per line on the given stream, bytes thinned out but the last kept', () => {
    registerSecret('super-secret-value')
    const {logger} = capture()
    const out: string[] = []
    const progress = createProgress({
      mode: 'json',
      logger,
      out: {write: (s: string) => out.push(s)},
      bytesIntervalMs: 60_000,
    })
    progress.report({event: 'step', phase: 'join', host: 'w1', step: 'upload k3s', status: 'start'})
    for (let done = 0; done <= 10; done++)
      progress.report({event: 'bytes', phase: 'join', host: 'w1', step: 'upload k3s', done, total: 10})
    progress.report({
      event: 'step',
      phase: 'join',
      host: 'w1',
      step: 'upload k3s',
      status: 'failed',
      error: 'refused super-secret-value',
    })
    const events = out.map((s) => {
      assert.ok(s.endsWith('\n') && !s.slice(0, -1).includes('\n'))
      return JSON.parse(s) as Record<string, unknown>
    })
    assert.deepEqual(
      events.map((e) => [e.event, e.status ?? e.done]),
      [
        ['step', 'start'],
        ['bytes', 0],
        ['bytes', 10],
        ['step', 'failed'],
      ],
    )
    assert.equal(events[3].error, 'refused [redacted]')
    assert.ok(typeof events[0].time === 'string')
  })

  it('plain: one log line per step start and end, carrying the host', () => {
    const {lines, logger} = capture()
    const progress = createProgress({mode: 'plain', logger})
    progress.report({event: 'step', phase: 'join', host: 'w7', step: 'start agent', status: 'start'})
    progress.report({event: 'step', phase: 'join', host: 'w7', step: 'start agent', status: 'done', elapsedMs: 1500})
    assert.deepEqual(
      lines.map((l) => [l.level, l.host, l.msg]),
      [
        [30, 'w7', 'start agent …'],
        [30, 'w7', 'start agent done in 1.5s'],
      ],
    )
  })

  it('plain: an upload logs a line at each quarter, however many bytes events come, and again when it restarts', () => {
    const {lines, logger} = capture()
    const progress = createProgress({mode: 'plain', logger, bytesIntervalMs: 0})
    for (const round of [1, 2])
      for (let done = 0; done <= 100; done++)
        progress.report({event: 'bytes', phase: 'join', host: `w${round}`, step: 'upload k3s', done, total: 100})
    for (let done = 0; done <= 60; done++)
      progress.report({event: 'bytes', phase: 'join', host: 'w1', step: 'upload k3s', done, total: 100})
    assert.deepEqual(
      lines.map((l) => `${String(l.host)} ${String(l.msg)}`),
      [
        'w1 upload k3s: 25 B of 100 B',
        'w1 upload k3s: 50 B of 100 B',
        'w1 upload k3s: 75 B of 100 B',
        'w2 upload k3s: 25 B of 100 B',
        'w2 upload k3s: 50 B of 100 B',
        'w2 upload k3s: 75 B of 100 B',
        'w1 upload k3s: 25 B of 100 B',
        'w1 upload k3s: 50 B of 100 B',
      ],
    )
  })

  it('tty: step lines go to the debug log only (the rows show them)', () => {
    const {lines, logger} = capture()
    const progress = createProgress({mode: 'tty', logger})
    progress.report({event: 'step', phase: 'join', host: 'w7', step: 'start agent', status: 'start'})
    progress.close()
    assert.deepEqual(
      lines.map((l) => [l.level, l.host]),
      [[20, 'w7']],
    )
  })

  describe('in a real process', function () {
    this.timeout(60_000)

    it('on a terminal: rows redrawn in place, and a log line written meanwhile sits whole above them', async function () {
      requireTool(this, 'script', 'bsdutils')
      const {code, stdout} = await run('script', [
        '-qec',
        `stty cols 120 rows 40; exec ${process.execPath} ${child} tty`,
        '/dev/null',
      ])
      assert.equal(code, 0, stdout)
      const ESC = '\u001B'
      assert.ok(stdout.includes('progress mode tty'), stdout)
      assert.match(stdout, /alpha\s+upload k3s\s+\d+\.\ds\s+\d\.\d MiB \/ 4\.0 MiB \d+%/)
      assert.match(stdout, /✓ beta\s+start agent/)
      // Each log line is preceded by erasing the rows (ESC[2K … ESC[G) and followed by the rows again.
      const logLine = /upload checked: sha256 matches/g
      let seen = 0
      for (const m of stdout.matchAll(logLine)) {
        seen++
        const before = stdout.slice(0, m.index)
        const lastErase = before.lastIndexOf(`${ESC}[G`)
        const lastNewline = before.lastIndexOf('\n')
        assert.ok(
          lastErase > lastNewline,
          `the log line was not written over erased rows: ${JSON.stringify(stdout.slice(Math.max(0, (m.index ?? 0) - 80), (m.index ?? 0) + 40))}`,
        )
        const after = stdout.slice((m.index ?? 0) + m[0].length)
        const nextLine = after.slice(after.indexOf('\n') + 1)
        assert.match(nextLine, /^(\u001B\[\?25l)?install agents: \d\/2 hosts finished/)
      }
      assert.equal(seen, 2)
      assert.match(stdout, /alpha\s+ok\s+start agent/)
    })

    it('on a pipe: plain lines with the host name, no terminal control codes', async () => {
      const {code, stderr} = await run(process.execPath, [child, 'tty'])
      assert.equal(code, 0, stderr)
      assert.ok(!stderr.includes('\u001B'), stderr)
      assert.ok(stderr.includes('progress mode plain'))
      for (const host of ['alpha', 'beta']) {
        assert.match(stderr, new RegExp(`${host}: upload k3s …`))
        assert.match(stderr, new RegExp(`${host}: upload k3s done in \\d+\\.\\ds`))
        assert.match(stderr, new RegExp(`${host}: start agent done in \\d+\\.\\ds`))
      }
    })
  })
})
