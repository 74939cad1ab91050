import {strict as assert} from 'node:assert'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HybridError} from '../../src/errors.js'
import {clearSecrets, registerSecret} from '../../src/log/redact.js'
import {
  forEachHost,
  type HostStatus,
  hostsExitCode,
  type Phase,
  type PlanContext,
  planExitCode,
  runPlan,
  skip,
  summaryJson,
} from '../../src/plan/index.js'
import {renderChanges, renderHostTable, renderSummary} from '../../src/ui/index.js'
import {testContext} from './plan-test-context.js'

/** A phase that appends what happens to it to `calls`. */
function phase(title: string, calls: string[], extra: Partial<Phase> = {}): Phase {
  return {
    title,
    prepare: () => void calls.push(`prepare ${title}`),
    run: () => void calls.push(`run ${title}`),
    cleanUp: () => void calls.push(`cleanUp ${title}`),
    ...extra,
  }
}

describe('runPlan', () => {
  afterEach(() => clearSecrets())

  it('runs phases in order, prepare before shouldRun, records skipped phases with their reason, cleans nothing up on success', async () => {
    const {ctx} = testContext()
    const calls: string[] = []
    const result = await runPlan(
      [
        phase('one', calls, {shouldRun: () => (calls.push('shouldRun one'), true)}),
        phase('two', calls, {shouldRun: () => skip('already running')}),
        phase('three', calls, {shouldRun: async () => false}),
        phase('four', calls),
      ],
      ctx,
    )
    assert.deepEqual(calls, [
      'prepare one',
      'shouldRun one',
      'run one',
      'prepare two',
      'prepare three',
      'prepare four',
      'run four',
    ])
    assert.equal(result.status, 'done')
    assert.equal(result.exitCode, 0)
    assert.deepEqual(
      result.phases.map((p) => [p.title, p.status, p.reason]),
      [
        ['one', 'done', undefined],
        ['two', 'skipped', 'already running'],
        ['three', 'skipped', undefined],
        ['four', 'done', undefined],
      ],
    )
  })

  it('on failure cleans up, newest first, only the phases whose run() was called (the failing one too)', async () => {
    const {ctx} = testContext()
    const calls: string[] = []
    const result = await runPlan(
      [
        phase('a', calls),
        phase('b', calls, {shouldRun: () => false}),
        phase('c', calls),
        phase('d', calls, {run: () => Promise.reject(new Error('d exploded\nsecond line'))}),
        phase('e', calls),
      ],
      ctx,
    )
    assert.deepEqual(
      calls.filter((c) => c.startsWith('cleanUp')),
      ['cleanUp d', 'cleanUp c', 'cleanUp a'],
    )
    assert.ok(!calls.includes('run e') && !calls.includes('prepare e'))
    assert.equal(result.status, 'failed')
    assert.equal(result.exitCode, 1)
    assert.deepEqual(result.failure && {phase: result.failure.phase, message: result.failure.message}, {
      phase: 'd',
      message: 'd exploded',
    })
    assert.deepEqual(
      result.phases.map((p) => p.status),
      ['done', 'skipped', 'done', 'failed', 'not-run'],
    )
  })

  it('a failing clean-up is logged and recorded, the other clean-ups still run, and the original error stays the error', async () => {
    const {ctx, lines} = testContext()
    const calls: string[] = []
    const result = await runPlan(
      [
        phase('a', calls),
        phase('b', calls, {cleanUp: () => Promise.reject(new Error('could not remove the drop-in'))}),
        phase('c', calls, {
          run: () => {
            throw new HybridError('TIMEOUT', 'the API did not answer')
          },
        }),
      ],
      ctx,
    )
    assert.deepEqual(
      calls.filter((c) => c.startsWith('cleanUp')),
      ['cleanUp c', 'cleanUp a'],
    )
    assert.equal(result.failure?.message, 'the API did not answer')
    assert.ok(result.failure?.cause instanceof HybridError)
    assert.deepEqual(result.cleanupFailures, [{phase: 'b', message: 'could not remove the drop-in'}])
    assert.ok(lines.some((l) => l.level === 50 && l.msg.includes('could not remove the drop-in')))
    assert.match(renderSummary(result), /clean-up of "b" failed: could not remove the drop-in/)
  })

  it('a phase whose prepare fails is not run and not cleaned up', async () => {
    const {ctx} = testContext()
    const calls: string[] = []
    const result = await runPlan(
      [
        phase('a', calls),
        phase('b', calls, {
          prepare: () => {
            throw new Error('no hosts')
          },
        }),
      ],
      ctx,
    )
    assert.deepEqual(calls, ['prepare a', 'run a', 'cleanUp a'])
    assert.equal(result.failure?.phase, 'b')
  })

  it("takes a HybridError's exit code and redacts its details", async () => {
    registerSecret('K10abcdef-not-shaped-secret')
    const {ctx} = testContext()
    const result = await runPlan(
      [
        phase('validate', [], {
          run: () => {
            throw new HybridError('INVENTORY_INVALID', 'bad inventory', {
              exitCode: 2,
              details: ['spec.token: K10abcdef-not-shaped-secret is not a file'],
            })
          },
        }),
      ],
      ctx,
    )
    assert.equal(result.exitCode, 2)
    assert.deepEqual(result.failure?.details, ['spec.token: [redacted] is not a file'])
  })

  describe('wet and --dry-run', () => {
    let dir: string
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hybrid-plan-'))
    })
    afterEach(async () => {
      await rm(dir, {recursive: true, force: true})
    })

    /** A phase that writes one file per host through wet, the way real phases change things. */
    const writeFiles = (hosts: string[]): Phase => ({
      title: 'write config',
      run: async (ctx: PlanContext) => {
        await forEachHost(ctx, hosts, {
          name: (h) => h,
          steps: [
            {
              title: 'write',
              run: async (h) => {
                const path = join(dir, `${h}.yaml`)
                const value = await ctx.wet(h, `write ${path}`, async () => {
                  await writeFile(path, 'server: https://100.64.255.1:6443\n')
                  return 'written'
                })
                if (!ctx.dryRun) assert.equal(value, 'written')
                else assert.equal(value, undefined)
              },
            },
          ],
        })
      },
    })

    it('under --dry-run records each sentence with host and phase and changes nothing', async () => {
      const {ctx, events} = testContext({dryRun: true})
      const result = await runPlan([writeFiles(['w1', 'w2'])], ctx)
      assert.equal(existsSync(join(dir, 'w1.yaml')), false)
      assert.equal(existsSync(join(dir, 'w2.yaml')), false)
      assert.equal(result.dryRun, true)
      assert.deepEqual(result.changes, [
        {phase: 'write config', host: 'w1', sentence: `write ${join(dir, 'w1.yaml')}`},
        {phase: 'write config', host: 'w2', sentence: `write ${join(dir, 'w2.yaml')}`},
      ])
      assert.ok(events.some((e) => e.event === 'change' && e.dryRun && e.host === 'w1'))
      assert.equal(
        renderChanges(result.changes, true),
        `dry run: 2 changes would be made:\n  write config\n    w1: write ${join(dir, 'w1.yaml')}\n    w2: write ${join(dir, 'w2.yaml')}\n`,
      )
      const json = JSON.parse(JSON.stringify(summaryJson(result))) as {dryRun: boolean; changes: unknown[]}
      assert.equal(json.dryRun, true)
      assert.equal(json.changes.length, 2)
      assert.match(renderSummary(result), /dry run: 2 changes would be made/)
    })

    it('in a real run does the change and records it; the same code', async () => {
      const {ctx, lines} = testContext()
      const result = await runPlan([writeFiles(['w1'])], ctx)
      assert.equal(await readFile(join(dir, 'w1.yaml'), 'utf8'), 'server: https://100.64.255.1:6443\n')
      assert.deepEqual(result.changes, [{phase: 'write config', host: 'w1', sentence: `write ${join(dir, 'w1.yaml')}`}])
      assert.ok(lines.some((l) => l.level === 20 && l.host === 'w1' && l.msg === `write ${join(dir, 'w1.yaml')}`))
    })

    it('a change that fails is not recorded as made', async () => {
      const {ctx} = testContext()
      const result = await runPlan(
        [
          phase('x', [], {
            run: (c: PlanContext) =>
              c.wet('w1', 'restart k3s-agent', () => Promise.reject(new Error('unit not found'))),
          }),
        ],
        ctx,
      )
      assert.deepEqual(result.changes, [])
      assert.equal(result.failure?.message, 'unit not found')
    })

    it('a registered secret in a sentence is redacted in the recorded change', async () => {
      registerSecret('tok-9f8e7d6c5b4a')
      const {ctx} = testContext({dryRun: true})
      const result = await runPlan(
        [phase('x', [], {run: (c: PlanContext) => c.wet('w1', 'write token tok-9f8e7d6c5b4a', () => {})})],
        ctx,
      )
      assert.equal(result.changes[0].sentence, 'write token [redacted]')
    })
  })

  it('an abort during a phase stops the plan, cleans up in reverse and reports interrupted', async () => {
    const controller = new AbortController()
    const {ctx} = testContext({signal: controller.signal})
    const calls: string[] = []
    const result = await runPlan(
      [
        phase('a', calls),
        phase('b', calls, {
          run: async () => {
            calls.push('run b')
            controller.abort()
            await sleep(10)
          },
        }),
        phase('c', calls),
      ],
      ctx,
    )
    assert.deepEqual(calls, ['prepare a', 'run a', 'prepare b', 'run b', 'cleanUp b', 'cleanUp a'])
    assert.equal(result.status, 'interrupted')
    assert.deepEqual(
      result.phases.map((p) => p.status),
      ['done', 'interrupted', 'not-run'],
    )
    assert.equal(result.exitCode, 1)
  })

  describe('exit codes (docs/architecture.md, "Exit codes")', () => {
    const hostsPhase = (failing: string[]): Phase => ({
      title: 'join',
      run: async (ctx: PlanContext) => {
        await forEachHost(ctx, ['w1', 'w2', 'w3'], {
          name: (h) => h,
          steps: [
            {title: 'join', run: (h) => (failing.includes(h) ? Promise.reject(new Error(`${h} refused`)) : undefined)},
          ],
        })
      },
    })

    it('all hosts ok: 0; some failed: 3; all failed: 1', async () => {
      for (const [failing, code] of [
        [[], 0],
        [['w2'], 3],
        [['w1', 'w2', 'w3'], 1],
      ] as const) {
        const {ctx} = testContext()
        const result = await runPlan([hostsPhase([...failing])], ctx)
        assert.equal(result.status, 'done')
        assert.equal(result.exitCode, code, `failing ${failing.join(',')}`)
        assert.deepEqual(
          result.hosts.filter((h) => h.status === 'failed').map((h) => h.host),
          failing,
        )
      }
    })

    it('the rule itself', () => {
      const cases: Array<[HostStatus[], number]> = [
        [[], 0],
        [['ok', 'ok'], 0],
        [['ok', 'skipped'], 0],
        [['failed', 'failed'], 1],
        [['interrupted', 'failed'], 1],
        [['ok', 'failed'], 3],
        [['ok', 'interrupted'], 3],
        [['skipped', 'failed'], 3],
      ]
      for (const [statuses, code] of cases) assert.equal(hostsExitCode(statuses), code, statuses.join(','))
      assert.equal(planExitCode('interrupted', []), 1)
      assert.equal(planExitCode('failed', [{host: 'w1', status: 'ok', stepsDone: 1, elapsedMs: 1}]), 1)
      assert.equal(planExitCode('failed', [], new HybridError('USAGE', 'x', {exitCode: 2})), 2)
    })
  })

  it('the summary table names each host, its result, the step reached and the error', async () => {
    const {ctx} = testContext()
    ctx.ledger.hosts.expect(['w1', 'w2', 'w3'])
    const result = await runPlan(
      [
        {
          title: 'join',
          run: async (c: PlanContext) => {
            await forEachHost(c, ['w1', 'w2'], {
              name: (h) => h,
              steps: [
                {title: 'connect', run: () => {}},
                {
                  title: 'upload k3s',
                  run: (h) => (h === 'w2' ? Promise.reject(new Error('no space left on device')) : undefined),
                },
              ],
            })
          },
        },
      ],
      ctx,
    )
    const table = renderHostTable(result.hosts).split('\n')
    assert.match(table[0], /^HOST\s+RESULT\s+STEP\s+TIME\s+DETAIL$/)
    assert.match(table[1], /^w1\s+ok\s+upload k3s\s+\d+\.\ds$/)
    assert.match(table[2], /^w2\s+failed\s+upload k3s\s+\d+\.\ds\s+no space left on device$/)
    assert.match(table[3], /^w3\s+skipped\s+-\s+0\.0s\s+no phase had work for this host$/)
    assert.equal(result.exitCode, 3)
    assert.match(renderSummary(result), /done; 1 of 3 hosts ok, 1 failed, 1 skipped in \d+\.\ds \(exit 3\)\n$/)
    assert.ok(!('cause' in JSON.parse(JSON.stringify(summaryJson(result)))))
  })
})
