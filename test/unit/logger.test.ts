import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const child = fileURLToPath(new URL('plan-child.js', import.meta.url))

describe('createLogger (real process: stderr and the log file)', function () {
  this.timeout(30_000)
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-log-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  const logFile = () => join(dir, 'state', 'logs', 'hybrid.log')
  const run = (...args: string[]) =>
    new Promise<{code: number; stdout: string; stderr: string}>((resolve) => {
      execFile(
        process.execPath,
        [child, 'log', ...args],
        {env: {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), NO_COLOR: '1'}},
        (error, stdout, stderr) => resolve({code: error ? (error.code as number) : 0, stdout, stderr}),
      )
    })

  it('json: one JSON object per line on stderr at the chosen level, with command and host; nothing on stdout', async () => {
    const {code, stdout, stderr} = await run('json', 'info', 'nofile')
    assert.equal(code, 0, stderr)
    assert.equal(stdout, '')
    const lines = stderr
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      lines.map((l) => [l.level, l.command, l.host, l.msg]),
      [
        [30, 'child', 'w9', 'hello from w9'],
        [40, 'child', undefined, 'careful now'],
      ],
    )
    assert.equal(existsSync(logFile()), false)
  })

  it('pretty: human lines on stderr, the host before the message', async () => {
    const {stderr} = await run('pretty', 'debug', 'nofile')
    assert.match(
      stderr,
      /^\[\d\d:\d\d:\d\d\] DEBUG: a debug line\n\[\d\d:\d\d:\d\d\] INFO: w9: hello from w9\n\[\d\d:\d\d:\d\d\] WARN: careful now\n$/,
    )
  })

  it('pretty: fields the message already says are left out, other lists of words take one line; the file keeps them as data', async () => {
    const {stderr} = await run('pretty', 'info', 'file', 'fields')
    assert.match(stderr, /^\[\d\d:\d\d:\d\d\] INFO: applying \(auto\): a, b\n {4}found: "a, b, c"\n$/)
    const line = JSON.parse((await readFile(logFile(), 'utf8')).trim()) as Record<string, unknown>
    assert.deepEqual([line.applying, line.found, line.setting], [['a', 'b'], ['a', 'b', 'c'], 'auto'])
  })

  it('the log file gets every line from debug up, as JSON, whatever stderr shows; dir 0700, file 0600', async () => {
    const {stderr} = await run('pretty', 'warn', 'file')
    assert.ok(!stderr.includes('hello from w9'))
    const lines = (await readFile(logFile(), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['a debug line', 'hello from w9', 'careful now'],
    )
    assert.equal((await stat(logFile())).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'state', 'logs'))).mode & 0o777, 0o700)
    // A second run appends.
    await run('json', 'info', 'file')
    assert.equal((await readFile(logFile(), 'utf8')).trimEnd().split('\n').length, 6)
  })

  it('narrows a log file someone left world-readable, and moves a large one aside', async () => {
    await mkdir(join(dir, 'state', 'logs'), {recursive: true, mode: 0o755})
    await writeFile(logFile(), '')
    await chmod(logFile(), 0o644)
    await truncate(logFile(), 11 * 1024 * 1024)
    await run('json', 'info', 'file')
    assert.equal((await stat(`${logFile()}.1`)).size, 11 * 1024 * 1024)
    assert.equal((await stat(`${logFile()}.1`)).mode & 0o777, 0o600)
    assert.equal((await stat(logFile())).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'state', 'logs'))).mode & 0o777, 0o700)
    assert.equal((await readFile(logFile(), 'utf8')).trimEnd().split('\n').length, 3)
  })
})
