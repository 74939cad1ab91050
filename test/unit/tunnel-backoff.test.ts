import {strict as assert} from 'node:assert'

import {allowsRemoteForward} from '../../src/tunnel/sshd-forwarding.js'
import {backoffDelay, DEFAULT_BACKOFF} from '../../src/tunnel/backoff.js'

describe('the API tunnel’s rules', () => {
  it('waits 0.5 s after a first failure, doubling to a 30 s cap', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(DEFAULT_BACKOFF, n))
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
    assert.equal(DEFAULT_BACKOFF.resetAfterMs, 60_000)
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
