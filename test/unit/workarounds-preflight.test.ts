import assert from 'node:assert/strict'

import type {WorkaroundName} from '../../src/inventory/schema.js'
import {runPreflight} from '../../src/sandbox/preflight.js'
import type {ProbeFinding, Workaround, WorkaroundContext} from '../../src/sandbox/workarounds/workaround.js'

const ctx: WorkaroundContext = {
  dataDir: '/nonexistent/data',
  agent: true,
  networkMode: 'tunnel',
  workDir: '/nonexistent/work',
}

/** A workaround whose probe answers `finding` (or never answers, or throws), for the table logic. */
function fake(
  id: string,
  probe: (signal?: AbortSignal) => Promise<ProbeFinding>,
  options: {kubelet?: boolean} = {},
): Workaround {
  // Made-up ids: the table logic does not care which workaround it is.
  const name = id as WorkaroundName
  return {
    id: name,
    blocker: `${id} blocker`,
    remedy: `${id} remedy`,
    appliesTo: (c) => (options.kubelet ? c.agent : true),
    probe: (c) => probe(c.signal),
    apply: async () => ({id: name, details: {}}),
    undo: async () => {},
    serverConfig: () => ({}),
  }
}
const found = (evidence = 'seen'): Promise<ProbeFinding> => Promise.resolve({found: true, evidence})
const absent = (): Promise<ProbeFinding> => Promise.resolve({found: false, evidence: 'not here'})

describe('preflight table', () => {
  it('says apply for found blockers under auto, skip for the rest, with the reason', async () => {
    const {report, selected} = await runPreflight(ctx, 'auto', {
      environment: false,
      workarounds: [fake('a', () => found()), fake('b', absent)],
    })
    assert.deepEqual(
      report.rows.map((r) => [r.id, r.found, r.action, r.reason]),
      [
        ['a', true, 'apply', 'found'],
        ['b', false, 'skip', 'not found'],
      ],
    )
    assert.deepEqual(
      selected.map((w) => w.id),
      ['a'],
    )
    assert.equal(report.ok, true)
    assert.deepEqual(report.problems, [])
  })

  it('honours all, none and a list in the action column', async () => {
    const ws = [fake('a', () => found()), fake('b', absent), fake('k', () => found(), {kubelet: true})]
    const actions = async (setting: Parameters<typeof runPreflight>[1], c = ctx) =>
      (await runPreflight(c, setting, {environment: false, workarounds: ws})).report.rows.map(
        (r) => `${r.id}:${r.action}:${r.reason}`,
      )
    assert.deepEqual(await actions('all'), [
      'a:apply:workarounds: all',
      'b:apply:workarounds: all',
      'k:apply:workarounds: all',
    ])
    assert.deepEqual(await actions('none'), [
      'a:skip:workarounds: none',
      'b:skip:workarounds: none',
      'k:skip:workarounds: none',
    ])
    assert.deepEqual(await actions(['b'] as never), [
      'a:skip:not listed in workarounds',
      'b:apply:listed in workarounds',
      'k:skip:not listed in workarounds',
    ])
    assert.deepEqual(await actions('auto', {...ctx, agent: false}), [
      'a:apply:found',
      'b:skip:not found',
      'k:skip:does not concern an agentless server',
    ])
  })

  it('a found blocker whose remedy cannot work here is none-available, and the report is not ok', async () => {
    const unremediable = fake('p', async () => ({
      found: true,
      evidence: 'missing',
      unremediable: 'ptrace is forbidden',
    }))
    const {report} = await runPreflight(ctx, 'none', {
      environment: false,
      workarounds: [unremediable, fake('b', absent)],
    })
    assert.equal(report.rows[0].action, 'none-available')
    assert.equal(report.rows[0].reason, 'ptrace is forbidden')
    assert.equal(report.ok, false)
    assert.deepEqual(report.problems, ['p: p blocker, and ptrace is forbidden'])
  })

  it('a found blocker without a remedy here is not among the workarounds applied', async () => {
    const unremediable = fake('p', async () => ({found: true, evidence: 'missing', unremediable: 'no way here'}))
    const {report, selected} = await runPreflight(ctx, 'auto', {
      environment: false,
      workarounds: [unremediable, fake('b', async () => ({found: true, evidence: 'missing'}))],
    })
    assert.deepEqual(
      report.rows.map((r) => r.action),
      ['none-available', 'apply'],
    )
    assert.deepEqual(
      selected.map((w) => w.id),
      ['b'],
    )
  })

  it('an unremediable blocker that was not found is not a problem', async () => {
    const {report} = await runPreflight(ctx, 'auto', {
      environment: false,
      workarounds: [fake('p', async () => ({found: false, evidence: 'fine', unremediable: 'x'}))],
    })
    assert.equal(report.rows[0].action, 'skip')
    assert.equal(report.ok, true)
  })

  it('a probe that hangs is reported as "probe timed out" at its limit, and assumed present', async () => {
    let aborted = false
    const hangs = fake(
      'h',
      (signal) =>
        new Promise<ProbeFinding>((_, reject) =>
          signal?.addEventListener('abort', () => ((aborted = true), reject(signal.reason))),
        ),
    )
    const never = fake('n', () => new Promise<ProbeFinding>(() => {}))
    const started = Date.now()
    const {report, selected} = await runPreflight(ctx, 'auto', {
      environment: false,
      limitMs: 200,
      graceMs: 300,
      workarounds: [hangs, never, fake('b', absent)],
    })
    const elapsed = Date.now() - started
    // 500 ms of limit and grace; three times the slack for a loaded machine, still far from a hang.
    assert.ok(elapsed < 3500, `returned after ${elapsed} ms, not hung`)
    assert.deepEqual(
      report.rows.map((r) => [r.id, r.timedOut, r.found, r.evidence]),
      [
        ['h', true, true, 'probe timed out after 200 ms (assumed present)'],
        ['n', true, true, 'probe timed out after 200 ms (assumed present)'],
        ['b', false, false, 'not here'],
      ],
    )
    assert.equal(aborted, true, 'the probe was told to stop (its signal aborted)')
    assert.deepEqual(
      selected.map((w) => w.id),
      ['h', 'n'],
    )
  })

  it('a probe that throws is reported with its error, not as a crash of preflight', async () => {
    const broken = fake('x', async () => {
      throw new Error('EIO reading /proc/self/mountinfo')
    })
    const {report} = await runPreflight(ctx, 'auto', {environment: false, workarounds: [broken]})
    assert.equal(report.rows[0].evidence, 'probe failed: EIO reading /proc/self/mountinfo (assumed present)')
    assert.equal(report.rows[0].action, 'apply')
  })
})
