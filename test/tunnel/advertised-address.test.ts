import {strict as assert} from 'node:assert'

import type {Host} from '../../src/remote/host.js'
import {SshConnections} from '../../src/remote/connections.js'
import {ensureAdvertisedAddress, removeAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {skipUnless} from '../helpers/requires.js'
import {labWorker} from '../remote/lab-workers.js'

const ADDRESS = '100.64.255.1'

/** The advertised address goes on a real worker over SSH and comes off again, each step twice. */
describe('the advertised address on a worker (lab)', function () {
  this.timeout(120_000)
  let lab: Lab
  let connections: SshConnections

  before(async function () {
    requireLab(this)
    lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    connections = new SshConnections()
  })
  after(async () => {
    await connections?.closeAll()
    await lab?.destroy()
  })

  /** The worker's own view: `ip -o -4 addr` lines carrying the address, and whether hybrid0 exists. */
  const seen = async (host: LabHost) => {
    const addr = await host.exec(['ip', '-o', '-4', 'addr', 'show'])
    const link = await host.exec(['ip', 'link', 'show', 'dev', 'hybrid0'])
    return {
      devices: addr.stdout
        .split('\n')
        .filter((l) => l.includes(` ${ADDRESS}/32 `))
        .map((l) => l.split(/\s+/)[1]),
      hybrid0: link.code === 0,
    }
  }

  const roundTrip = async (host: LabHost, ssh: Host, loopbackOnly: boolean, device: string) => {
    const first = await ensureAdvertisedAddress(ssh, ADDRESS, {loopbackOnly})
    assert.deepEqual(first, {address: ADDRESS, device, created: true, changed: true})
    assert.deepEqual((await seen(host)).devices, [device])
    const again = await ensureAdvertisedAddress(ssh, ADDRESS, {loopbackOnly})
    assert.deepEqual(again, {...first, changed: false}, 'already there: nothing done')
    assert.deepEqual((await seen(host)).devices, [device])

    // Removed from the first record alone, twice.
    assert.deepEqual(await removeAdvertisedAddress(ssh, first), {changed: true})
    assert.deepEqual(await seen(host), {devices: [], hybrid0: false})
    assert.deepEqual(await removeAdvertisedAddress(ssh, first), {changed: false})
    assert.deepEqual(await seen(host), {devices: [], hybrid0: false})
    // lo itself was left alone: it keeps its own address.
    assert.match((await host.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'lo'])).stdout, / 127\.0\.0\.1\/8 /)
  }

  it('on lo (the fallback): goes on once, comes off once, each step repeated safely', async () => {
    const host = lab.host('w1')
    await roundTrip(host, await connections.host(labWorker(lab, host)), true, 'lo')
  })

  it('on hybrid0 where the kernel makes dummy interfaces: hybrid0 is made, and deleted with the address', async function () {
    const host = lab.host('w2')
    const probe = await host.exec(['ip', 'link', 'add', 'probe0', 'type', 'dummy'])
    if (probe.code === 0) await host.exec(['ip', 'link', 'del', 'probe0'])
    const ssh = await connections.host(labWorker(lab, host))
    if (probe.code !== 0) {
      // This kernel has no dummy driver: the automatic choice must fall back to lo, and say so.
      const record = await ensureAdvertisedAddress(ssh, ADDRESS)
      assert.equal(record.device, 'lo')
      assert.deepEqual(await seen(host), {devices: ['lo'], hybrid0: false})
      await removeAdvertisedAddress(ssh, record)
      assert.deepEqual(await seen(host), {devices: [], hybrid0: false})
      skipUnless(
        this,
        false,
        `this kernel makes no dummy interfaces (${probe.stderr.trim()}); the fallback to lo was checked instead`,
      )
    }
    await roundTrip(host, ssh, false, 'hybrid0')
  })

  it('an address the worker already holds on an interface of its own is left to it', async () => {
    const host = lab.host('w1')
    const ssh = await connections.host(labWorker(lab, host))
    assert.equal((await host.exec(['ip', 'addr', 'add', `${ADDRESS}/32`, 'dev', 'eth0'])).code, 0)
    try {
      const record = await ensureAdvertisedAddress(ssh, ADDRESS)
      assert.deepEqual(record, {address: ADDRESS, device: 'eth0', created: false, changed: false})
      assert.deepEqual(await removeAdvertisedAddress(ssh, record), {changed: false})
      assert.deepEqual((await seen(host)).devices, ['eth0'])
    } finally {
      await host.exec(['ip', 'addr', 'del', `${ADDRESS}/32`, 'dev', 'eth0'])
    }
  })
})
