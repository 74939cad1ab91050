import {strict as assert} from 'node:assert'
import {once} from 'node:events'
import {readFile, stat, writeFile} from 'node:fs/promises'

import {SshConnections} from '../../src/remote/connections.js'
import {effectiveSshd} from '../../src/remote/facts.js'
import type {Host} from '../../src/remote/host.js'
import {ensureAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {
  allowRemoteForward,
  reloadSshd,
  remoteForwardNeedsDropIn,
  revertRemoteForward,
  SSHD_DROP_IN,
} from '../../src/tunnel/sshd-forwarding.js'
import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {labWorker} from '../remote/lab-workers.js'

const ADDRESS = '100.64.255.1'
const PORT = 6443

/**
 * sshd's drop-in on real lab hosts: where sshd binds a remote forward for the advertised address to its
 * loopback (the lab's base config says nothing, so GatewayPorts is sshd's default `no`), the drop-in makes
 * it bind the address itself, for the login user and that address and port only (every other account
 * keeps the host's settings, as `sshd -T -C` shows); reverting puts it back. Sessions open across the
 * reload keep working.
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

  /** What sshd -T says for a connection of `user` (Match blocks applied): the keys the drop-in touches. */
  const forUser = async (host: LabHost, user: string) => {
    const r = await host.exec(['/usr/sbin/sshd', '-T', '-C', `user=${user},host=client.example,addr=10.213.0.9`])
    assert.equal(r.code, 0, r.stderr)
    const keys = [
      'gatewayports',
      'allowtcpforwarding',
      'permitlisten',
      'permitopen',
      'clientaliveinterval',
      'clientalivecountmax',
    ]
    return r.stdout
      .split('\n')
      .filter((line) => keys.includes(line.split(' ')[0]))
      .sort()
  }
  const SCOPED = [
    'allowtcpforwarding yes',
    'clientalivecountmax 3',
    'clientaliveinterval 15',
    'gatewayports clientspecified',
    `permitlisten ${ADDRESS}:${PORT}`,
    `permitopen ${ADDRESS}:${PORT}`,
  ]
  const SCOPE = {user: 'root', address: ADDRESS, port: PORT}

  /** Does sshd let a new connection listen on ADDRESS:port? (The error's message when it does not.) */
  const forwardRefused = async (host: LabHost, port: number): Promise<string | undefined> => {
    const {client} = await new SshConnections().client(labWorker(lab, host))
    try {
      return await new Promise<string | undefined>((resolve) =>
        client.forwardIn(ADDRESS, port, (error) => resolve(error?.message)),
      )
    } finally {
      const closed = once(client, 'close')
      client.end()
      await closed
    }
  }

  /** Does sshd open a local forward (ssh -L) of a new connection to address:port? (The refusal when it does not.) */
  const localForwardRefused = async (host: LabHost, address: string, port: number): Promise<string | undefined> => {
    const {client} = await new SshConnections().client(labWorker(lab, host))
    try {
      return await new Promise<string | undefined>((resolve) =>
        client.forwardOut('127.0.0.1', 0, address, port, (error, channel) => {
          channel?.close()
          // OpenSSH's reason codes: 1 administratively prohibited (PermitOpen), 2 the connect failed.
          resolve(error ? `reason ${(error as Error & {reason?: number}).reason}: ${error.message}` : undefined)
        }),
      )
    } finally {
      const closed = once(client, 'close')
      client.end()
      await closed
    }
  }

  it('GatewayPorts unset: the drop-in lets only the login user forward, to the address and port only; revert undoes it, each twice', async () => {
    const {host, ssh} = await hostOf('closed')
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
    assert.deepEqual(await forwardBindsOn(host), ['127.0.0.1:6443', '[::1]:6443'], 'sshd binds loopback instead')
    const othersBefore = await forUser(host, 'nobody')
    assert.equal(await localForwardRefused(host, '127.0.0.1', 22), undefined, 'the host allows local forwards')

    const record = await allowRemoteForward(ssh, SCOPE)
    assert.deepEqual(record, {dropIn: SSHD_DROP_IN, written: true, changed: true})
    const file = host.pathOnMachine(SSHD_DROP_IN)
    assert.equal((await stat(file)).mode & 0o777, 0o644)
    const text = await readFile(file, 'utf8')
    assert.match(text, /^Match User root\n {4}AllowTcpForwarding yes\n {4}GatewayPorts clientspecified\n/m)
    assert.match(text, /^ {4}ClientAliveInterval 15\n {4}ClientAliveCountMax 3$/m)
    // Another account keeps the host's own settings; the login user gets the scoped forward.
    assert.deepEqual(await forUser(host, 'nobody'), othersBefore)
    assert.ok(
      othersBefore.includes('gatewayports no') && othersBefore.includes('permitlisten any'),
      othersBefore.join(', '),
    )
    assert.deepEqual(await forUser(host, 'root'), SCOPED)
    // The connection that made the change lived through sshd's reload.
    assert.equal((await ssh.check(['echo', 'still here'])).stdout, 'still here\n')
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])
    assert.ok(await forwardRefused(host, PORT + 1), 'another port is refused')
    const refusal = (await localForwardRefused(host, '127.0.0.1', 22)) ?? 'allowed'
    assert.match(refusal, /^reason 1:/, `a local forward anywhere but the API is refused: ${refusal}`)

    assert.deepEqual(await allowRemoteForward(ssh, SCOPE), {dropIn: SSHD_DROP_IN, written: true, changed: false})
    const facts = await ssh.facts({advertiseAddress: ADDRESS, apiPort: PORT})
    assert.deepEqual(await allowRemoteForward(ssh, SCOPE, facts), {dropIn: SSHD_DROP_IN, written: true, changed: false})

    assert.deepEqual(await revertRemoteForward(ssh, record), {changed: true})
    await assert.rejects(stat(file), {code: 'ENOENT'})
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
    assert.deepEqual(await revertRemoteForward(ssh, record), {changed: false})
    assert.deepEqual(await forwardBindsOn(host), ['127.0.0.1:6443', '[::1]:6443'])
  })

  it('an earlier hybrid’s drop-in (forwarding for every account) is rewritten, scoped', async () => {
    const {host, ssh} = await hostOf('closed')
    const othersBefore = await forUser(host, 'nobody')
    const old = [
      "# Written by hybrid: its API tunnel listens on the cluster's advertised address on this host.",
      '# hybrid removes this file when it takes the worker out of the cluster.',
      'GatewayPorts clientspecified',
      'AllowTcpForwarding yes',
      'ClientAliveInterval 15',
      'ClientAliveCountMax 3',
      '',
    ].join('\n')
    await writeFile(host.pathOnMachine(SSHD_DROP_IN), old, {mode: 0o644})
    await reloadSshd(ssh)
    assert.ok((await forUser(host, 'nobody')).includes('gatewayports clientspecified'), 'the old drop-in is for all')
    assert.equal(await remoteForwardNeedsDropIn(ssh, SCOPE), true)
    const record = await allowRemoteForward(ssh, SCOPE)
    assert.deepEqual(record, {dropIn: SSHD_DROP_IN, written: true, changed: true})
    assert.deepEqual(await forUser(host, 'nobody'), othersBefore)
    assert.deepEqual(await forUser(host, 'root'), SCOPED)
    assert.equal(await remoteForwardNeedsDropIn(ssh, SCOPE), false)
    await revertRemoteForward(ssh, record)
  })

  it('GatewayPorts no in sshd_config after the Include: the drop-in’s Match wins for the login user', async () => {
    const {host, ssh} = await hostOf('denied')
    const record = await allowRemoteForward(ssh, SCOPE)
    assert.equal(record.changed, true)
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])
    assert.ok((await forUser(host, 'nobody')).includes('gatewayports no'))
    await revertRemoteForward(ssh, record)
    assert.deepEqual(await settings(ssh), ['no', 'yes'])
  })

  it('sshd that already allows the forward for everyone: the drop-in still scopes it and adds ClientAlive', async () => {
    const {host, ssh} = await hostOf('open')
    const record = await allowRemoteForward(ssh, SCOPE)
    assert.deepEqual(record, {dropIn: SSHD_DROP_IN, written: true, changed: true})
    assert.deepEqual(await forUser(host, 'root'), SCOPED)
    assert.deepEqual(await forwardBindsOn(host), [`${ADDRESS}:${PORT}`])
    await revertRemoteForward(ssh, record)
  })

  it('a Match block read before hybrid’s that says no: one sentence, and hybrid’s drop-in is taken out again', async () => {
    const {host, ssh} = await hostOf('closed')
    const admin = host.pathOnMachine('/etc/ssh/sshd_config.d/00-admin.conf')
    await writeFile(admin, 'Match User root\n    GatewayPorts no\n')
    try {
      await assert.rejects(allowRemoteForward(ssh, SCOPE), (error: Error) => {
        assert.match(
          error.message,
          /^closed: sshd still has GatewayPorts no, AllowTcpForwarding yes and PermitListen 100\.64\.255\.1:6443 for root with hybrid's \/etc\/ssh\/sshd_config\.d\/hybrid-tunnel\.conf .*reload sshd$/,
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
