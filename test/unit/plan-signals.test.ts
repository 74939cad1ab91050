import {strict as assert} from 'node:assert'
import {type ChildProcess, spawn} from 'node:child_process'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

const child = fileURLToPath(new URL('plan-child.js', import.meta.url))

interface Event {
  event: string
  phase?: string
  host?: string
  step?: string
  status?: string
  elapsedMs?: number
  reason?: string
  result?: unknown
}

/** The child's events as they arrive, its stderr, and a way to wait for an event or for its exit. */
class Watched {
  readonly events: Event[] = []
  stderr = ''
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null; at: number}>
  private waiters: Array<() => void> = []

  constructor(readonly proc: ChildProcess) {
    createInterface({input: proc.stdout!}).on('line', (line) => {
      this.events.push(JSON.parse(line) as Event)
      this.wake()
    })
    proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString()
      this.wake()
    })
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({code, signal, at: Date.now()})))
  }

  /** Resolves when `condition` holds (checked on every event and every stderr chunk). */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => (condition() ? resolve() : this.waiters.push(check))
      this.waiters.push(check)
    })
  }

  steps(status: string): Event[] {
    return this.events.filter((e) => e.event === 'step' && e.status === status)
  }

  private wake(): void {
    const waiting = this.waiters
    this.waiters = []
    for (const w of waiting) w()
  }
}

describe('SIGINT during a plan (real process, real signals)', function () {
  this.timeout(60_000)
  let proc: ChildProcess | undefined

  afterEach(() => {
    // Only the child this test started, by its pid, if it is still there.
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    proc = undefined
  })

  function start(stepMs: number): Watched {
    proc = spawn(process.execPath, [child, 'interrupt'], {
      env: {...process.env, STEP_MS: String(stepMs)},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return new Watched(proc)
  }

  it('the first one: no new step starts, the steps in flight finish, phases that ran are cleaned up in reverse', async () => {
    const stepMs = 1500
    const w = start(stepMs)
    await w.until(() => w.steps('start').length === 2)
    const sentAt = w.events.length
    w.proc.kill('SIGINT')
    const {code, signal} = await w.exited

    assert.equal(signal, null, w.stderr)
    assert.equal(code, 1, w.stderr)
    assert.match(w.stderr, /SIGINT: finishing the steps in flight, then cleaning up \(press Ctrl-C again to exit now\)/)
    // Only the two steps in flight when the signal came ever started; both ran to their end.
    assert.deepEqual(
      w.steps('start').map((e) => `${e.host} ${e.step}`),
      ['w1 one', 'w2 one'],
    )
    const done = w.steps('done')
    assert.deepEqual(done.map((e) => `${e.host} ${e.step}`).sort(), ['w1 one', 'w2 one'])
    for (const e of done) assert.ok((e.elapsedMs ?? 0) >= stepMs - 50, `step cut short: ${JSON.stringify(e)}`)
    assert.ok(w.events.indexOf(done[0]) >= sentAt)

    // Clean-up after the in-flight steps ended, newest phase first; "last" never ran, so no clean-up.
    const tail = w.events.slice(w.events.indexOf(done[1]) + 1)
    assert.deepEqual(
      tail.filter((e) => e.event === 'cleanup').map((e) => `${e.phase} ${e.status}`),
      ['join start', 'join done', 'first start', 'first done'],
    )
    assert.deepEqual(
      tail.filter((e) => e.event === 'result' && typeof e.result === 'string').map((e) => e.result),
      ['cleaned join', 'cleaned first'],
    )
    assert.deepEqual(
      w.events.filter((e) => e.event === 'host').map((e) => [e.host, e.status, e.reason]),
      [
        ['w1', 'interrupted', 'interrupted after step "one"'],
        ['w2', 'interrupted', 'interrupted after step "one"'],
        ['w3', 'interrupted', 'interrupted before it started'],
        ['w4', 'interrupted', 'interrupted before it started'],
      ],
    )
    const summary = w.events.at(-1)?.result as {status: string; exitCode: number}
    assert.deepEqual([summary.status, summary.exitCode], ['interrupted', 1])
  })

  it('the second one: exits at once with 130, without waiting for the steps in flight or cleaning up', async () => {
    const stepMs = 5000
    const w = start(stepMs)
    await w.until(() => w.steps('start').length === 2)
    const firstAt = Date.now()
    w.proc.kill('SIGINT')
    await w.until(() => w.stderr.includes('finishing the steps in flight'))
    w.proc.kill('SIGINT')
    const {code, signal, at} = await w.exited

    assert.equal(signal, null)
    assert.equal(code, 130)
    assert.ok(at - firstAt < stepMs / 2, `took ${at - firstAt} ms to exit`)
    assert.match(w.stderr, /SIGINT again: exiting now without cleaning up/)
    assert.deepEqual(w.steps('done'), [])
    assert.deepEqual(
      w.events.filter((e) => e.event === 'cleanup'),
      [],
    )
  })
})
