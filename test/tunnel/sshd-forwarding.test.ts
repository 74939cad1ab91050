import {strict as assert} from 'node:assert'
import {once} from 'node:events'
import {readFile, stat, writeFile} from 'node:fs/promises'

import {SshConnections} from '../../src/remote/connections.js'
import {effectiveSshd} from '../../src/remote/facts.js'
import type {Host} from '../../src/remote/host.js'
import {ensureAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {allowRemoteForward, revertRemoteForward, SSHD_DROP_IN} from '../../src/tunnel/sshd-forwarding.js'
import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {labWorker} from '../remote/lab-workers.js'

const ADDRESS = '100.64.255.1'
const PORT = 6443

/**
 * sshd's drop-in on real lab hosts: where sshd binds a remote forward for the advertised address to its
 * loopback (the lab's base config says nothing, so GatewayPorts is sshd's default `no`), the drop-in makes
 * it bind the address itself; reverting puts it back. Sessions open across the reload keep working.
 */
describe("sshd's drop-in for the API tunnel (lab)", function () {
  this.timeout(120_000)
  let lab: Lab
  let connections: SshConnections

  before(async function () {
    requireLab(this)
    lab = await createLab({
      hosts: [
        {name: 'closed'},
        {name: 'denied', sshd: ['GatewayPorts no']},
        {name: 'open', sshd: ['GatewayPorts clientspecified']},
      ],
    })
    connections = new SshConnections()
  })
  after(async () => {
    await connections?.closeAll()
    await lab?.destroy()
  })

  const hostOf = async (name: string) => {
    const host = lab.host(name)
    const ssh = await connections.host(labWorker(lab, host))
    await ensureAdvertisedAddress(ssh, ADDRESS, {loopbackOnly: true})
    return {host, ssh}
  }

  /** Ask a new connection for the forward, and report the addresses sshd listens on for it. */
  const forwardBindsOn = async (host: LabHost): Promise<string[]> => {
    const {client} = await new SshConnections().client(labWorker(lab, host))
    try {
      await new Promise<void>((resolve, reject) =>
        client.forwardIn(ADDRESS, PORT, (error) => (error ? reject(error) : resolve())),
      )
      const ss = await host.exec(['ss', '-Htln', `sport = :${PORT}`])
      return ss.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(/\s+/)[3])
        .sort()
    } finally {
      const closed = once(client, 'close')
      client.end()
      await closed
    }
  }

  const settings = async (ssh: Host) => {
    const s = await effectiveSshd(ssh, await ssh.privilege())
    return [s?.gatewayPorts, s?.allowTcpForwarding]
  }

  it('GatewayPorts unset: the forward lands on loopback; the drop-in moves it to the address; revert undoes it, each twice', async () => {
    const {host, ssh} = await hostOf('closed')
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
    assert.deepEqual(await forwardBindsOn(host), ['127.0.0.1:6443', '[::1]:6443'], 'sshd binds loopback instead')

    const record = await allowRemoteForward(ssh)
    assert.deepEqual(record, {dropIn: SSHD_DROP_IN, written: true, changed: true})
    const file = host.pathOnMachine(SSHD_DROP_IN)
    assert.equal((await stat(file)).mode & 0o777, 0o644)
    const text = await readFile(file, 'utf8')
    assert.match(text, /^GatewayPorts clientspecified\nAllowTcpForwarding yes$/m)
    assert.match(text, /^ClientAliveInterval 15\nClientAliveCountMax 3$/m)
    assert.deepEqual(await settings(ssh), ['clientspecified', 'yes'])
    // The connection that made the change lived through sshd's reload.
    assert.equal((await ssh.check(['echo', 'still here'])).stdout, 'still here\n')
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])

    assert.deepEqual(await allowRemoteForward(ssh), {dropIn: SSHD_DROP_IN, written: true, changed: false})
    const facts = await ssh.facts({advertiseAddress: ADDRESS, apiPort: PORT})
    assert.deepEqual(await allowRemoteForward(ssh, facts), {dropIn: SSHD_DROP_IN, written: true, changed: false})

    assert.deepEqual(await revertRemoteForward(ssh, record), {changed: true})
    await assert.rejects(stat(file), {code: 'ENOENT'})
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
    assert.deepEqual(await revertRemoteForward(ssh, record), {changed: false})
    assert.deepEqual(await forwardBindsOn(host), ['127.0.0.1:6443', '[::1]:6443'])
  })

  it('GatewayPorts no in sshd_config after the Include: the drop-in, read first, wins', async () => {
    const {host, ssh} = await hostOf('denied')
    const record = await allowRemoteForward(ssh)
    assert.equal(record.changed, true)
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])
    await revertRemoteForward(ssh, record)
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
  })

  it('sshd that already allows it: nothing written', async () => {
    const {host, ssh} = await hostOf('open')
    assert.deepEqual(await allowRemoteForward(ssh), {dropIn: SSHD_DROP_IN, written: false, changed: false})
    await assert.rejects(stat(host.pathOnMachine(SSHD_DROP_IN)), {code: 'ENOENT'})
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])
  })

  it('a drop-in read before hybrid’s that says no: one sentence, and hybrid’s drop-in is taken out again', async () => {
    const {host, ssh} = await hostOf('closed')
    const admin = host.pathOnMachine('/etc/ssh/sshd_config.d/00-admin.conf')
    await writeFile(admin, 'GatewayPorts no\n')
    try {
      await assert.rejects(allowRemoteForward(ssh), (error: Error) => {
        assert.match(
          error.message,
          /^closed: sshd still has GatewayPorts no and AllowTcpForwarding yes with hybrid's \/etc\/ssh\/sshd_config\.d\/hybrid-tunnel\.conf .*reload sshd$/,
        )
        assert.ok(!error.message.includes('\n'))
        return true
      })
      await assert.rejects(stat(host.pathOnMachine(SSHD_DROP_IN)), {code: 'ENOENT'})
    } finally {
      await host.exec(['rm', '-f', '/etc/ssh/sshd_config.d/00-admin.conf'])
    }
  })
})
