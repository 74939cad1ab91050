import {strict as assert} from 'node:assert'

import type {Host, RunOptions, RunResult} from '../../src/remote/host.js'
import {removeAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {revertRemoteForward, SSHD_DROP_IN} from '../../src/tunnel/sshd-forwarding.js'

const ADDRESS = '100.64.255.1'
const ok = (stdout = ''): RunResult => ({exitCode: 0, stdout, stderr: ''})

/**
 * A worker's network as `ip` shows it: which devices exist and which addresses each holds. It answers
 * the `ip` commands removeAdvertisedAddress runs, and records those that change something.
 */
function fakeNetwork(state: {hybrid0: boolean; addresses: Record<string, string[]>}) {
  const changes: string[] = []
  const answer = (argv: readonly string[]): RunResult => {
    const args = argv.join(' ')
    if (args === 'ip link show dev hybrid0') return state.hybrid0 ? ok() : {exitCode: 1, stdout: '', stderr: 'no'}
    if (args === 'ip -o -4 addr show') {
      const lines = Object.entries(state.addresses).flatMap(([dev, list], i) =>
        list.map((a) => `${i + 1}: ${dev}    inet ${a}/32 scope global ${dev}\\       valid_lft forever`),
      )
      return ok(`${lines.join('\n')}\n`)
    }
    changes.push(args)
    if (args === 'ip link del hybrid0' && state.hybrid0) {
      state.hybrid0 = false
      delete state.addresses.hybrid0
      return ok()
    }
    const del = /^ip addr del (\S+)\/32 dev (\S+)$/.exec(args)
    if (del && state.addresses[del[2]]?.includes(del[1])) {
      state.addresses[del[2]] = state.addresses[del[2]].filter((a) => a !== del[1])
      return ok()
    }
    return {exitCode: 2, stdout: '', stderr: `RTNETLINK answers: Cannot assign requested address (${args})`}
  }
  const host = {
    name: 'w1',
    async run(argv: readonly string[], _options?: RunOptions) {
      return answer(argv)
    },
    async check(argv: readonly string[]) {
      const result = answer(argv)
      if (result.exitCode !== 0) throw new Error(result.stderr)
      return result
    },
  } as unknown as Host
  return {host, state, changes}
}

/** The record written before the change (docs/architecture.md, "Crash windows"). */
const intent = {address: ADDRESS, device: 'hybrid0', created: true}

describe('undoing a change on a worker that a crash interrupted (fake host)', () => {
  it('the address: the intent recorded, nothing done yet: nothing is changed', async () => {
    const {host, changes} = fakeNetwork({hybrid0: false, addresses: {lo: ['127.0.0.1']}})
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: false})
    assert.deepEqual(changes, [])
  })

  it('the address: hybrid0 made but the address not yet on it: hybrid0 is deleted', async () => {
    const {host, state, changes} = fakeNetwork({hybrid0: true, addresses: {lo: ['127.0.0.1']}})
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: true})
    assert.deepEqual(changes, ['ip link del hybrid0'])
    assert.equal(state.hybrid0, false)
  })

  it('the address: on hybrid0, recorded only as the intent: hybrid0 (and the address with it) goes', async () => {
    const {host, state} = fakeNetwork({hybrid0: true, addresses: {lo: ['127.0.0.1'], hybrid0: [ADDRESS]}})
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: true})
    assert.deepEqual(state, {hybrid0: false, addresses: {lo: ['127.0.0.1']}})
  })

  it('the address: put on lo (the fallback) before the record said so: it comes off lo, lo stays', async () => {
    const {host, state, changes} = fakeNetwork({hybrid0: false, addresses: {lo: ['127.0.0.1', ADDRESS]}})
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: true})
    assert.deepEqual(changes, [`ip addr del ${ADDRESS}/32 dev lo`])
    assert.deepEqual(state.addresses.lo, ['127.0.0.1'])
    // Repeated: nothing left to do.
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: false})
  })

  it("the address: on an interface the host had it on (not hybrid's): left alone", async () => {
    const {host, changes} = fakeNetwork({hybrid0: false, addresses: {eth0: [ADDRESS]}})
    assert.deepEqual(await removeAdvertisedAddress(host, intent), {changed: false})
    assert.deepEqual(changes, [])
  })

  it('the sshd drop-in: recorded, never written: nothing removed, sshd not reloaded', async () => {
    const calls: string[] = []
    const host = {
      name: 'w1',
      async stat(path: string) {
        calls.push(`stat ${path}`)
        return undefined
      },
      async run(argv: readonly string[]) {
        calls.push(argv.join(' '))
        return ok()
      },
    } as unknown as Host
    assert.deepEqual(await revertRemoteForward(host, {dropIn: SSHD_DROP_IN, written: true}), {changed: false})
    assert.deepEqual(calls, [`stat ${SSHD_DROP_IN}`])
  })
})
