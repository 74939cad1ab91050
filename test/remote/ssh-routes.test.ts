import {strict as assert} from 'node:assert'

import {SshConnections} from '../../src/remote/connections.js'
import type {RemoteError} from '../../src/remote/errors.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {labWorker} from './lab-workers.js'

/** The ways to a worker and the ways it fails: bastion, HTTP CONNECT proxy, a host that is down, a refused key. */
describe('SSH routes and failures (lab)', function () {
  this.timeout(120_000)

  describe('direct', () => {
    let lab: Lab
    let connections: SshConnections
    before(async function () {
      requireLab(this)
      lab = await createLab({
        hosts: [{name: 'p1'}, {name: 'p2'}, {name: 'down', reachable: false}, {name: 'nokey', acceptLabKey: false}],
      })
    })
    after(async () => {
      await lab?.destroy()
    })
    beforeEach(() => {
      connections = new SshConnections({})
    })
    afterEach(async () => {
      await connections.closeAll()
    })

    it('a host that is down fails within about the connect timeout, saying nothing answered', async () => {
      const started = Date.now()
      await assert.rejects(
        connections.host(labWorker(lab, lab.host('down'), {connectTimeoutSeconds: 2})),
        (error: RemoteError) => {
          assert.ok(['SSH_TIMEOUT', 'SSH_UNREACHABLE'].includes(error.code), error.code)
          assert.ok(error.message.startsWith('down: '), error.message)
          return true
        },
      )
      const elapsed = Date.now() - started
      // The 2 s timeout and three times the old 1.5 s slack, for a loaded machine; far below the
      // kernel's own connect timeout (about two minutes), which is what a missing timeout would give.
      assert.ok(elapsed < 6500, `took ${elapsed} ms with a 2 s timeout`)
    })

    it('a refused key is named as such, with the key and user and what to change', async () => {
      await assert.rejects(connections.host(labWorker(lab, lab.host('nokey'))), (error: RemoteError) => {
        assert.equal(error.code, 'SSH_AUTH_REFUSED')
        assert.ok(error.message.includes(`key ${lab.identityFile}`), error.message)
        assert.match(error.message, /for user root; add the public key to ~root\/\.ssh\/authorized_keys/)
        return true
      })
    })

    it('no key at all (no identity file, no agent) is one sentence before any connection', async () => {
      await assert.rejects(
        connections.host(labWorker(lab, lab.host('p1'), {identityFile: `${lab.dir}/no-such-key`})),
        (error: RemoteError) =>
          error.code === 'SSH_NO_KEY' && /no-such-key cannot be read \(ENOENT\)/.test(error.message),
      )
    })

    it('through a proxy: an allowed worker is reached through it, a filtered one names the proxy refusal', async () => {
      const proxy = await lab.startProxy({allow: ['p1']})
      const through = await connections.host(labWorker(lab, lab.host('p1'), {proxy: proxy.url}))
      assert.equal((await through.check(['hostname'])).stdout.trim(), 'p1')
      await assert.rejects(
        connections.host(labWorker(lab, lab.host('p2'), {proxy: proxy.url})),
        (error: RemoteError) => {
          assert.equal(error.code, 'SSH_PROXY_REFUSED')
          assert.match(
            error.message,
            /^p2: the proxy http:\/\/127\.0\.0\.1:\d+ refused the tunnel to [\d.]+:22: 403 Filtered$/,
          )
          assert.doesNotMatch(error.message, /refused the connection/)
          return true
        },
      )
      // proxy: env reads HTTPS_PROXY and honours NO_PROXY, as curl does.
      const viaEnv = new SshConnections({HTTPS_PROXY: proxy.url, NO_PROXY: ''})
      try {
        await assert.rejects(viaEnv.host(labWorker(lab, lab.host('p2'), {proxy: 'env'})), /403 Filtered/)
        assert.equal(
          (await (await viaEnv.host(labWorker(lab, lab.host('p1'), {proxy: 'env'}))).check(['hostname'])).stdout.trim(),
          'p1',
        )
      } finally {
        await viaEnv.closeAll()
      }
      const bypass = new SshConnections({HTTPS_PROXY: proxy.url, NO_PROXY: lab.host('p2').address})
      try {
        const direct = await bypass.host(labWorker(lab, lab.host('p2'), {proxy: 'env'}))
        assert.equal((await direct.check(['hostname'])).stdout.trim(), 'p2', 'NO_PROXY: straight to the worker')
      } finally {
        await bypass.closeAll()
      }
      await proxy.stop()
    })
  })

  describe('bastion', () => {
    let lab: Lab
    before(async function () {
      requireLab(this)
      lab = await createLab({hosts: [{name: 'b1'}, {name: 'b2'}], bastion: true})
    })
    after(async () => {
      await lab?.destroy()
    })

    it('reaches workers this machine has no route to through one shared bastion connection', async () => {
      const bastion = {address: lab.bastion!.address, port: 22, user: 'root', identityFile: lab.identityFile}
      const connections = new SshConnections({})
      try {
        const hosts = await Promise.all(
          ['b1', 'b2'].map((name) => connections.host(labWorker(lab, lab.host(name), {bastion}))),
        )
        assert.deepEqual(await Promise.all(hosts.map(async (h) => (await h.check(['hostname'])).stdout.trim())), [
          'b1',
          'b2',
        ])
        // Both workers' connections are channels of one bastion connection.
        const accepted = (await lab.bastion!.sshdLog()).match(/Accepted publickey/g) ?? []
        assert.equal(accepted.length, 1, 'one connection to the bastion')
      } finally {
        await connections.closeAll()
      }
    })

    it('a worker the bastion cannot reach is named with the bastion’s answer', async () => {
      const b1 = lab.host('b1')
      await b1.stopSshd()
      const connections = new SshConnections({})
      try {
        const bastion = {address: lab.bastion!.address, port: 22, user: 'root', identityFile: lab.identityFile}
        await assert.rejects(connections.host(labWorker(lab, b1, {bastion})), (error: RemoteError) => {
          assert.equal(error.code, 'SSH_BASTION_FAILED')
          assert.match(error.message, /^b1: the bastion [\d.]+ could not open a connection to [\d.]+:22: /)
          return true
        })
      } finally {
        await connections.closeAll()
        await b1.startSshd()
      }
    })
  })
})
