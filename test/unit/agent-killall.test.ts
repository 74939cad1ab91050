import {strict as assert} from 'node:assert'

import {K3S_AGENT_DIRS, K3S_LINKS, KILLALL_SECONDS, killallAgent} from '../../src/agent/killall.js'
import {HybridError} from '../../src/errors.js'
import type {Host, RunOptions, RunResult} from '../../src/remote/host.js'

/** A host that answers every command with `result` and records what it was asked. */
function fakeHost(result: RunResult): {host: Host; calls: Array<{argv: readonly string[]; options?: RunOptions}>} {
  const calls: Array<{argv: readonly string[]; options?: RunOptions}> = []
  const host = {
    name: 'w1',
    async run(argv: readonly string[], options?: RunOptions) {
      calls.push({argv, options})
      return result
    },
  } as unknown as Host
  return {host, calls}
}

describe("the agent's clean-up (k3s-killall's steps)", () => {
  it('runs as root, under `timeout` with its deadline, from an argument array: data dir, links, --, directories', async () => {
    const {host, calls} = fakeHost({exitCode: 0, stdout: '', stderr: ''})
    await killallAgent(host, '/var/lib/rancher/k3s')
    assert.equal(calls.length, 1)
    const [{argv, options}] = calls
    assert.equal(options?.sudo, true)
    assert.deepEqual(argv.slice(0, 2), ['sh', '-c'])
    assert.match(argv[2], /exec timeout -s KILL "\$0" "\$@"/)
    assert.equal(argv[3], String(KILLALL_SECONDS))
    assert.deepEqual(argv.slice(4, 6), ['sh', '-c'])
    assert.deepEqual(argv.slice(7), ['sh', '/var/lib/rancher/k3s', ...K3S_LINKS, '--', ...K3S_AGENT_DIRS])
  })

  it('a run killed at the deadline fails with one sentence naming the worker and the deadline', async () => {
    const {host} = fakeHost({exitCode: 137, stdout: '', stderr: ''})
    await assert.rejects(killallAgent(host, '/var/lib/rancher/k3s'), (error: unknown) => {
      assert.ok(error instanceof HybridError)
      assert.equal(error.code, 'AGENT_UNINSTALL_FAILED')
      assert.equal(
        error.message,
        `w1: cleaning up after the k3s agent (its containers, mounts, network namespaces, links and iptables rules) failed: it did not finish within ${KILLALL_SECONDS} s`,
      )
      return true
    })
  })

  it('any other failure names the last line the worker printed', async () => {
    const {host} = fakeHost({exitCode: 1, stdout: '', stderr: 'first\nsudo: a password is required\n'})
    await assert.rejects(killallAgent(host, '/var/lib/rancher/k3s'), /w1: .* failed: sudo: a password is required$/)
  })
})
