import {strict as assert} from 'node:assert'

import {allowsRemoteForward} from '../../src/tunnel/sshd-forwarding.js'
import {backoffCeiling, backoffDelay, DEFAULT_BACKOFF} from '../../src/tunnel/backoff.js'

describe('the API tunnel’s rules', () => {
  it('waits up to 0.5 s after a first failure, the ceiling doubling to 30 s', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffCeiling(DEFAULT_BACKOFF, n))
    assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
    assert.equal(DEFAULT_BACKOFF.resetAfterMs, 60_000)
  })

  it('jitters each wait within the upper half of its ceiling, so many tunnels do not redial at once', () => {
    assert.equal(
      backoffDelay(DEFAULT_BACKOFF, 3, () => 0),
      1000,
    )
    assert.equal(
      backoffDelay(DEFAULT_BACKOFF, 3, () => 0.999999),
      2000,
    )
    // 50 tunnels that failed together (the real random source): spread over the window, not one instant.
    const delays = Array.from({length: 50}, () => backoffDelay(DEFAULT_BACKOFF, 7))
    for (const d of delays) assert.ok(d >= 15_000 && d <= 30_000, `${d} ms within [15 s, 30 s]`)
    assert.ok(new Set(delays).size >= 25, `${new Set(delays).size} distinct waits among 50`)
  })

  it('counts sshd as allowing the forward only with GatewayPorts clientspecified or yes and remote forwards allowed', () => {
    const cases: Array<[string | null, string | null, boolean]> = [
      ['clientspecified', 'yes', true],
      ['yes', 'remote', true],
      ['clientspecified', 'all', true],
      ['no', 'yes', false],
      ['clientspecified', 'local', false],
      ['clientspecified', 'no', false],
      [null, null, false],
    ]
    for (const [gatewayPorts, allowTcpForwarding, expected] of cases)
      assert.equal(
        allowsRemoteForward({gatewayPorts, allowTcpForwarding}),
        expected,
        `${gatewayPorts} ${allowTcpForwarding}`,
      )
  })
})
