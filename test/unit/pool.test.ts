import {strict as assert} from 'node:assert'
import {setTimeout as sleep} from 'node:timers/promises'

import {clearSecrets, registerSecret} from '../../src/log/redact.js'
import {forEachHost, type HostStep, runPool} from '../../src/plan/index.js'
import {since, testContext} from './plan-test-context.js'

/** A step that waits `ms` and records which hosts are between their first step and their last. */
function tracker() {
  const active = new Set<string>()
  let max = 0
  return {
    enter(host: string) {
      active.add(host)
      max = Math.max(max, active.size)
    },
    leave(host: string) {
      active.delete(host)
    },
    get max() {
      return max
    },
  }
}

describe('runPool', () => {
  it('never runs more than `concurrency` items at once, and uses all of them', async () => {
    let inFlight = 0
    let max = 0
    const durations = [40, 10, 55, 25, 5, 60, 15, 30, 45, 20, 35, 50]
    const settled = await runPool(durations, 3, async (ms) => {
      inFlight++
      max = Math.max(max, inFlight)
      await sleep(ms)
      inFlight--
    })
    assert.equal(max, 3)
    assert.ok(settled.every((s) => s.status === 'fulfilled'))
  })

  it('is a sliding window: the next item starts when any one finishes, not when the batch does', async () => {
    const t0 = Date.now()
    const startedAt: number[] = []
    await runPool([1200, 30, 30, 30], 2, async (ms, i) => {
      startedAt[i] = since(t0)
      await sleep(ms)
    })
    // Items 2 and 3 start after item 1 (30 ms) and item 2, long before item 0 (1200 ms) ends, where a
    // batch would start them; the bounds leave a loaded machine three times the old slack.
    assert.ok(startedAt[2] >= 25 && startedAt[2] < 600, `item 2 started at ${startedAt[2]} ms`)
    assert.ok(startedAt[3] >= 55 && startedAt[3] < 750, `item 3 started at ${startedAt[3]} ms`)
  })

  it('records a rejected item and goes on with the others', async () => {
    const settled = await runPool(['a', 'b', 'c'], 2, async (x) => {
      await sleep(10)
      if (x === 'b') throw new Error('b broke')
    })
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
  })

  it('after the signal aborts, starts nothing new and lets in-flight items finish', async () => {
    const controller = new AbortController()
    const finished: number[] = []
    setTimeout(() => controller.abort(), 50)
    const settled = await runPool(
      [0, 1, 2, 3, 4, 5],
      2,
      async (i) => {
        await sleep(150)
        finished.push(i)
      },
      controller.signal,
    )
    assert.deepEqual(finished.sort(), [0, 1])
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'fulfilled', 'not-started', 'not-started', 'not-started', 'not-started'],
    )
  })
})

describe('forEachHost', () => {
  afterEach(() => clearSecrets())

  it('never has more than `concurrency` hosts between their first step and their last', async () => {
    const {ctx} = testContext({concurrency: 4})
    const t = tracker()
    const hosts = Array.from({length: 10}, (_, i) => `w${i}`)
    const wait = (host: string, step: number) => sleep(5 + ((host.charCodeAt(1) * 7 + step * 13) % 35))
    const steps: HostStep<string>[] = [
      {title: 'one', run: async (h) => (t.enter(h), await wait(h, 1))},
      {title: 'two', run: (h) => wait(h, 2)},
      {title: 'three', run: async (h) => (await wait(h, 3), t.leave(h))},
    ]
    const done = await forEachHost(ctx, hosts, {name: (h) => h, steps})
    assert.equal(t.max, 4)
    assert.deepEqual(done, hosts)
    assert.ok(ctx.ledger.hosts.outcomes().every((o) => o.stepsDone === 3))
  })

  it('lets a fast host run all its steps, and the next host start, while a slow host is still busy', async () => {
    const {ctx} = testContext({concurrency: 2})
    const t0 = Date.now()
    const timeline: Record<string, number> = {}
    const mark = (key: string) => (timeline[key] = since(t0))
    const plan: Record<string, number[]> = {slow: [500], fast: [20, 20, 20], third: [20]}
    const steps: HostStep<string>[] = [0, 1, 2].map((i) => ({
      title: `step ${i}`,
      run: async (h) => {
        const ms = plan[h][i]
        if (ms === undefined) return
        mark(`${h} ${i} start`)
        await sleep(ms)
        mark(`${h} ${i} end`)
      },
    }))
    await forEachHost(ctx, ['slow', 'fast', 'third'], {name: (h) => h, steps})
    assert.ok(timeline['fast 2 end'] < timeline['slow 0 end'], JSON.stringify(timeline))
    assert.ok(timeline['third 0 start'] >= timeline['fast 2 end'], JSON.stringify(timeline))
    assert.ok(timeline['third 0 end'] < timeline['slow 0 end'], JSON.stringify(timeline))
  })

  it('records a failing host with its step and error sentence; the other hosts finish', async () => {
    const {ctx, lines, events} = testContext({concurrency: 2})
    const ran: string[] = []
    const steps: HostStep<string>[] = ['one', 'two', 'three'].map((title) => ({
      title,
      run: async (h) => {
        await sleep(10)
        if (h === 'w3' && title === 'two') throw new Error('connection reset by peer\n    at somewhere (x.js:1:1)')
        ran.push(`${h} ${title}`)
      },
    }))
    const hosts = ['w1', 'w2', 'w3', 'w4', 'w5']
    const done = await forEachHost(ctx, hosts, {name: (h) => h, steps})

    assert.deepEqual(done, ['w1', 'w2', 'w4', 'w5'])
    for (const h of done)
      for (const s of ['one', 'two', 'three']) assert.ok(ran.includes(`${h} ${s}`), `${h} ${s} did not run`)
    assert.ok(!ran.includes('w3 three'))
    const w3 = ctx.ledger.hosts.outcomes().find((o) => o.host === 'w3')
    assert.equal(w3?.status, 'failed')
    assert.equal(w3?.step, 'two')
    assert.equal(w3?.stepsDone, 1)
    assert.equal(w3?.error, 'connection reset by peer')
    assert.ok(
      events.some(
        (e) => e.event === 'step' && e.host === 'w3' && e.status === 'failed' && e.error === 'connection reset by peer',
      ),
    )
    // The stack goes to the debug log, on a line that names the host.
    assert.ok(lines.some((l) => l.host === 'w3' && l.level === 20 && JSON.stringify(l.err).includes('somewhere')))

    // A later phase leaves the failed host out.
    const later: string[] = []
    await forEachHost(ctx, hosts, {name: (h) => h, steps: [{title: 'again', run: (h) => void later.push(h)}]})
    assert.deepEqual(later.sort(), ['w1', 'w2', 'w4', 'w5'])
  })

  it('skip(reason) ends a host here as skipped and later phases leave it out', async () => {
    const {ctx} = testContext()
    const ran: string[] = []
    const steps: HostStep<string>[] = [
      {title: 'check', run: (h, host) => (h === 'b' ? host.skip('not selected') : undefined)},
      {title: 'act', run: (h) => void ran.push(h)},
    ]
    const done = await forEachHost(ctx, ['a', 'b'], {name: (h) => h, steps})
    await forEachHost(ctx, ['a', 'b'], {
      name: (h) => h,
      steps: [{title: 'later', run: (h) => void ran.push(`${h} later`)}],
    })
    assert.deepEqual(done, ['a'])
    assert.deepEqual(ran, ['a', 'a later'])
    const b = ctx.ledger.hosts.outcomes().find((o) => o.host === 'b')
    assert.equal(b?.status, 'skipped')
    assert.equal(b?.reason, 'not selected')
  })

  it('redacts a registered secret from the error sentence it records', async () => {
    registerSecret('s3cr3t-t0ken-value')
    const {ctx, events} = testContext()
    await forEachHost(ctx, ['w1'], {
      name: (h) => h,
      steps: [{title: 'join', run: () => Promise.reject(new Error('join refused token s3cr3t-t0ken-value'))}],
    })
    const outcome = ctx.ledger.hosts.outcomes()[0]
    assert.equal(outcome.error, 'join refused token [redacted]')
    assert.ok(!JSON.stringify(events).includes('s3cr3t-t0ken-value'))
  })

  it('reports bytes of the current step', async () => {
    const {ctx, events} = testContext()
    await forEachHost(ctx, ['w1'], {
      name: (h) => h,
      steps: [{title: 'upload k3s', run: (_h, host) => host.bytes(512, 1024)}],
    })
    assert.deepEqual(
      events.filter((e) => e.event === 'bytes'),
      [{event: 'bytes', phase: '', host: 'w1', step: 'upload k3s', done: 512, total: 1024}],
    )
  })
})
