import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {copyFile, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {SshConnections} from '../../src/remote/connections.js'
import type {RemoteError} from '../../src/remote/errors.js'
import {fingerprint} from '../../src/remote/known-hosts.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {fileDigest, labWorker} from './lab-workers.js'

/** The three host-key policies against real sshd: what is accepted, refused, recorded, and what is not. */
describe('SSH host-key policies (lab)', function () {
  this.timeout(120_000)
  let lab: Lab
  let connections: SshConnections

  before(async function () {
    requireLab(this)
    lab = await createLab({hosts: [{name: 'k1'}, {name: 'k2'}]})
  })
  after(async () => {
    await lab?.destroy()
  })
  beforeEach(() => {
    connections = new SshConnections()
  })
  afterEach(async () => {
    await connections.closeAll()
  })

  /** A known_hosts file of the test's own: the lab's, or empty. */
  async function knownHostsCopy(name: string, filled: boolean): Promise<string> {
    const file = join(lab.dir, name)
    if (filled) await copyFile(lab.knownHosts, file)
    else await writeFile(file, '')
    return file
  }

  const keyPrint = (hostKey: string) => fingerprint(Buffer.from(hostKey.split(' ')[1], 'base64'))

  it('strict: a known key connects and is reported as known', async () => {
    const host = await connections.host(labWorker(lab, lab.host('k1')))
    assert.equal(host.hostKey, 'known')
    assert.equal((await host.check(['hostname'])).stdout.trim(), 'k1')
  })

  it('strict: an unknown key is refused with its fingerprint and the setting that accepts it; known_hosts untouched', async () => {
    const file = await knownHostsCopy('strict-empty', false)
    const k1 = lab.host('k1')
    await assert.rejects(connections.host(labWorker(lab, k1, {knownHosts: file})), (error: RemoteError) => {
      assert.equal(error.code, 'SSH_HOST_KEY_UNKNOWN')
      assert.ok(error.message.startsWith(`k1: the host key of ${k1.address}:22`), error.message)
      assert.ok(error.message.includes(keyPrint(k1.hostKey)), error.message)
      assert.match(error.message, /ssh\.hostKeyPolicy: accept-new/)
      return true
    })
    assert.equal(await readFile(file, 'utf8'), '')
  })

  it('accept-new records an unknown key in a form OpenSSH reads, then refuses a changed key as a possible man-in-the-middle', async () => {
    const file = await knownHostsCopy('accept-new', false)
    const k2 = lab.host('k2')
    const worker = labWorker(lab, k2, {knownHosts: file, hostKeyPolicy: 'accept-new'})
    const first = await connections.host(worker)
    assert.equal(first.hostKey, 'recorded')
    // OpenSSH's own client now trusts the host through that file, strictly.
    const out = execFileSync('ssh', [
      '-F',
      '/dev/null',
      '-i',
      lab.identityFile,
      '-o',
      `UserKnownHostsFile=${file}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      `root@${k2.address}`,
      'hostname',
    ])
    assert.equal(out.toString().trim(), 'k2')
    await connections.closeAll()

    await k2.regenerateHostKey()
    const before = await fileDigest(file)
    connections = new SshConnections()
    await assert.rejects(connections.host(worker), (error: RemoteError) => {
      assert.equal(error.code, 'SSH_HOST_KEY_CHANGED')
      assert.match(error.message, /man-in-the-middle/)
      assert.ok(error.message.includes(keyPrint(k2.hostKey)), 'names the new key')
      return true
    })
    assert.equal(await fileDigest(file), before, 'a changed key is not recorded')
  })

  it('strict: a changed key is refused the same way', async () => {
    const k2 = lab.host('k2')
    // The lab's known_hosts kept k2's key from before it was regenerated above.
    await assert.rejects(
      connections.host(labWorker(lab, k2)),
      /host key of .* is now ssh-ed25519 SHA256:.*man-in-the-middle/,
    )
  })

  it('pinned: the inventory hostKey is what counts, and known_hosts is neither read nor written', async () => {
    const file = await knownHostsCopy('pinned-empty', false)
    const k1 = lab.host('k1')
    const pinned = await connections.host(labWorker(lab, k1, {knownHosts: file, hostKeyPolicy: 'pinned'}, k1.hostKey))
    assert.equal(pinned.hostKey, 'pinned')
    await assert.rejects(
      connections.host(labWorker(lab, lab.host('k2'), {knownHosts: file, hostKeyPolicy: 'pinned'}, k1.hostKey)),
      (error: RemoteError) => error.code === 'SSH_HOST_KEY_CHANGED' && /not the pinned hostKey/.test(error.message),
    )
    assert.equal(await readFile(file, 'utf8'), '')
  })
})
