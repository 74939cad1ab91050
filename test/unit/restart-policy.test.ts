import {strict as assert} from 'node:assert'

import {failureSentence} from '../../src/sandbox/k3s-failure.js'
import {
  DEFAULT_RESTART_POLICY,
  type RestartDecision,
  RestartBudget,
  type RestartPolicy,
  restartPolicyFromEnv,
} from '../../src/sandbox/restart-policy.js'

const policy: RestartPolicy = {limit: 3, windowMs: 60_000, backoffMs: 1000, maxBackoffMs: 3000}

/** The decisions for deaths at these times (ms). */
function decisions(budget: RestartBudget, times: readonly number[]): RestartDecision[] {
  return times.map((t) => budget.afterDeath(t))
}

describe('restart policy: when the supervisor restarts a dead k3s', () => {
  it('reads overrides from the environment, in seconds for the window, and ignores values that are not numbers ≥ 0', () => {
    assert.deepEqual(restartPolicyFromEnv({}), DEFAULT_RESTART_POLICY)
    assert.deepEqual(
      restartPolicyFromEnv({
        HYBRID_RESTART_LIMIT: '2',
        HYBRID_RESTART_WINDOW_SECONDS: '30',
        HYBRID_RESTART_BACKOFF_MS: '0',
      }),
      {
        limit: 2,
        windowMs: 30_000,
        backoffMs: 0,
        maxBackoffMs: DEFAULT_RESTART_POLICY.maxBackoffMs,
      },
    )
    assert.deepEqual(
      restartPolicyFromEnv({
        HYBRID_RESTART_LIMIT: 'many',
        HYBRID_RESTART_WINDOW_SECONDS: '-1',
        HYBRID_RESTART_BACKOFF_MS: 'Infinity',
      }),
      DEFAULT_RESTART_POLICY,
    )
  })

  it('doubles the delay for each death in the window, capped, and gives up after `limit` restarts', () => {
    const budget = new RestartBudget(policy)
    assert.deepEqual(decisions(budget, [0, 10, 20, 30]), [
      {restartInMs: 1000},
      {restartInMs: 2000},
      {restartInMs: 3000},
      {giveUp: true},
    ])
  })

  it('forgets deaths older than the window, so a k3s that dies rarely is restarted forever', () => {
    const budget = new RestartBudget(policy)
    // One death a minute and a bit: each is alone in its window.
    assert.deepEqual(decisions(budget, [0, 61_000, 122_000, 183_000, 244_000]), Array(5).fill({restartInMs: 1000}))
  })

  it('counts only the deaths inside the window ending now', () => {
    const budget = new RestartBudget(policy)
    // Three deaths close together, then one 50 s after the first: the window still holds all four.
    assert.deepEqual(decisions(budget, [0, 1000, 2000]), [
      {restartInMs: 1000},
      {restartInMs: 2000},
      {restartInMs: 3000},
    ])
    assert.deepEqual(budget.afterDeath(50_000), {giveUp: true})
    // 61 s after the first two: the ones at 2 s and 50 s remain, plus this one.
    assert.deepEqual(budget.afterDeath(61_500), {restartInMs: 3000})
  })

  it('with limit 0, the first death after readiness is the last', () => {
    assert.deepEqual(new RestartBudget({...policy, limit: 0}).afterDeath(0), {giveUp: true})
  })

  it('the give-up sentence names the deaths and the window the policy allowed', () => {
    assert.equal(
      failureSentence('gave-up', {code: 2, signal: null}, policy),
      'k3s server died 4 times within 1 minute (last time it exited with code 2); hybrid stopped restarting it',
    )
    assert.equal(
      failureSentence('gave-up', {code: null, signal: 'SIGSEGV'}, DEFAULT_RESTART_POLICY),
      'k3s server died 6 times within 10 minutes (last time it was killed by SIGSEGV); hybrid stopped restarting it',
    )
    assert.equal(
      failureSentence('died', {code: null, signal: null}, policy, new Error('/x/k3s: ENOENT.')),
      'k3s server could not be started: /x/k3s: ENOENT',
    )
  })
})
