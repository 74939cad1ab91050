import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {copyFile, mkdtemp, rm} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {SshConnections} from '../../src/remote/connections.js'
import {ensureAdvertisedAddress} from '../../src/tunnel/advertised-address.js'
import {ApiTunnel, type TunnelHealth, type TunnelTarget} from '../../src/tunnel/api-tunnel.js'
import {TunnelKeeper} from '../../src/tunnel/keeper.js'
import {allowRemoteForward, reloadSshd} from '../../src/tunnel/sshd-forwarding.js'
import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {labWorker} from '../remote/lab-workers.js'

const ADDRESS = '100.64.255.1'
const PORT = 6443

/**
 * The API tunnel on real lab sshd: a server on this machine's 127.0.0.1 answers a client run inside the
 * worker at the advertised address, byte for byte; the tunnel comes back by itself when its sshd session
 * is killed; stop() leaves nothing listening; the keeper follows its list of workers.
 */
describe('the API tunnel (lab)', function () {
  this.timeout(120_000)
  let lab: Lab
  let dir: string
  let server: Server
  let targetPort: number
  // Larger than sshd's channel window (2 MiB), so the answer waits for window adjustments on the way.
  const body = randomBytes(6 << 20)
  const digest = createHash('sha256').update(body).digest('hex')
  const tunnels: Array<{stop(): Promise<unknown>}> = []

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-tunnel-'))
    const names = ['w1', 'w2', 'closed', 'stranger', 'bare']
    lab = await createLab({hosts: names.map((name) => ({name}))})
    const connections = new SshConnections()
    try {
      for (const name of names) {
        const ssh = await connections.host(labWorker(lab, lab.host(name)))
        if (name !== 'bare') await ensureAdvertisedAddress(ssh, ADDRESS)
        if (name !== 'closed') await allowRemoteForward(ssh, {user: 'root', address: ADDRESS, port: PORT})
      }
    } finally {
      await connections.closeAll()
    }
    server = createServer((request, response) => {
      response.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': body.length})
      response.end(body)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    targetPort = (server.address() as AddressInfo).port
  })
  afterEach(async () => {
    for (const tunnel of tunnels.splice(0)) await tunnel.stop()
  })
  after(async () => {
    server?.close()
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  const target = (host: LabHost, knownHosts?: string): TunnelTarget => ({
    worker: labWorker(lab, host, knownHosts ? {knownHosts} : {}),
    bindAddress: ADDRESS,
    bindPort: PORT,
    targetPort,
  })
  const start = (t: TunnelTarget) => {
    const tunnel = new ApiTunnel(t)
    tunnels.push(tunnel)
    return tunnel
  }
  const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) => {
    const end = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  /** The digest of what a client inside the worker gets from the advertised address. */
  const fetchInside = async (host: LabHost, headers: string[] = []) => {
    const options = headers.map((h) => `-H '${h}' `).join('')
    const run = await host.exec(['sh', '-c', `curl -sS --max-time 10 ${options}http://${ADDRESS}:${PORT}/ | sha256sum`])
    return run.stdout.split(' ')[0]
  }
  /** The pids of processes listening on the tunnel's port inside the worker (sshd's session process). */
  const listeners = async (host: LabHost) => {
    const ss = await host.exec(['ss', '-Htlnp', `sport = :${PORT}`])
    return [...ss.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))
  }

  it('a client inside the worker gets the server on this machine, byte for byte, at the advertised address', async () => {
    const w1 = lab.host('w1')
    const tunnel = start(target(w1))
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    assert.equal(await fetchInside(w1), digest)
    // The server closes the connection right after the answer: all of it still arrives.
    assert.equal(await fetchInside(w1, ['Connection: close']), digest)
    const health = tunnel.health()
    assert.equal(health.worker, 'w1')
    assert.equal(health.connections, 2)
    assert.equal(health.reconnects, 0)
    assert.equal(health.lastError, undefined)
    assert.ok(Date.parse(health.since) <= Date.now())
  })

  it('its sshd session killed on the worker: the tunnel comes back by itself within seconds and answers again', async () => {
    const w1 = lab.host('w1')
    const changes: TunnelHealth[] = []
    const tunnel = new ApiTunnel(target(w1), {onChange: (h) => changes.push(h)})
    tunnels.push(tunnel)
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    const [session] = await listeners(w1)
    assert.ok(session, 'sshd listens for the tunnel')
    assert.equal((await w1.exec(['kill', '-KILL', String(session)])).code, 0)
    const killedAt = Date.now()
    // Bounds a loaded 2-core machine keeps: seconds, not the minutes of a backoff run away.
    await until('the tunnel is down', () => tunnel.health().state !== 'up', 15_000)
    await until('the tunnel is up again', () => tunnel.health().state === 'up', 30_000)
    const back = Date.now() - killedAt
    assert.ok(back < 15_000, `back after ${back} ms`)
    const [again] = await listeners(w1)
    assert.ok(again && again !== session, 'a new sshd session holds the listener')
    assert.equal(await fetchInside(w1), digest)
    const health = tunnel.health()
    // One attempt normally; on a loaded machine an attempt may time out and be retried: a few, each one
    // a 'connecting' the tunnel reported, between the one loss and the one recovery.
    assert.ok(health.reconnects >= 1 && health.reconnects <= 3, `${health.reconnects} reconnects`)
    assert.match(health.lastError ?? '', /^w1: the API tunnel's SSH connection was lost \(.*\); reconnecting$/)
    const states = changes.map((c) => c.state)
    assert.deepEqual(states.slice(0, 2), ['up', 'down'], states.join(', '))
    assert.equal(states.at(-1), 'up', states.join(', '))
    assert.ok(
      states.slice(2, -1).every((state) => state === 'connecting' || state === 'down'),
      states.join(', '),
    )
    assert.equal(states.filter((state) => state === 'connecting').length, health.reconnects, states.join(', '))
  })

  it('sshd stopped on the worker: down while it is, back by itself once sshd listens again', async () => {
    const w1 = lab.host('w1')
    const tunnel = new ApiTunnel(target(w1), {backoff: {initialMs: 200, maxMs: 1000, resetAfterMs: 60_000}})
    tunnels.push(tunnel)
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    await w1.stopSshd()
    try {
      await until('a refused reconnect', () => /refused the connection/.test(tunnel.health().lastError ?? ''), 15_000)
      assert.match(
        tunnel.health().lastError!,
        /^w1: [\d.]+:22 refused the connection \(is sshd running there, on port 22\?\)$/,
      )
      assert.notEqual(tunnel.health().state, 'up')
    } finally {
      await w1.startSshd()
    }
    await until('the tunnel is up again', () => tunnel.health().state === 'up', 30_000)
    assert.ok(tunnel.health().reconnects >= 2, `${tunnel.health().reconnects} reconnects`)
    assert.equal(await fetchInside(w1), digest)
  })

  it('sshd reloaded on the worker: the tunnel stays up, on the same session', async () => {
    const w1 = lab.host('w1')
    const tunnel = start(target(w1))
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    const [session] = await listeners(w1)
    const logBefore = (await w1.sshdLog()).length
    const connections = new SshConnections()
    try {
      await reloadSshd(await connections.host(labWorker(lab, w1)))
    } finally {
      await connections.closeAll()
    }
    assert.match((await w1.sshdLog()).slice(logBefore), /Received SIGHUP; restarting/)
    assert.equal(await fetchInside(w1), digest)
    assert.deepEqual(await listeners(w1), [session])
    assert.equal(tunnel.health().state, 'up')
    assert.equal(tunnel.health().reconnects, 0)
  })

  it('stop() closes the forward: nothing listens on the worker, and the state is down', async () => {
    const w1 = lab.host('w1')
    const tunnel = start(target(w1))
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    assert.equal((await listeners(w1)).length, 1)
    await tunnel.stop()
    assert.deepEqual(await listeners(w1), [])
    assert.equal(tunnel.health().state, 'down')
    const refused = await w1.exec(['curl', '-sS', '--max-time', '5', `http://${ADDRESS}:${PORT}/`])
    assert.notEqual(refused.code, 0)
    await tunnel.stop() // a second stop is harmless
  })

  it('sshd without GatewayPorts clientspecified: down with a sentence naming the fix, retried, nothing left listening', async () => {
    const closed = lab.host('closed')
    const tunnel = start(target(closed))
    await until('the tunnel reports the refusal', () => tunnel.health().lastError !== undefined)
    assert.match(
      tunnel.health().lastError!,
      /^closed: sshd bound the API tunnel to its loopback, not to 100\.64\.255\.1:6443, as its GatewayPorts is not clientspecified; .*network\.manageSshd: true$/,
    )
    await until('a retry', () => tunnel.health().reconnects >= 1, 15_000)
    assert.notEqual(tunnel.health().state, 'up')
    await tunnel.stop()
    assert.deepEqual(await listeners(closed), [])
  })

  it('a forward sshd refuses: the sentence says why (the address missing, the port taken)', async () => {
    const bare = start(target(lab.host('bare')))
    await until('bare reports', () => bare.health().lastError !== undefined)
    assert.match(
      bare.health().lastError!,
      /^bare: sshd cannot listen on 100\.64\.255\.1:6443 for the API tunnel, as 100\.64\.255\.1 is not on the worker; /,
    )
    const w1 = lab.host('w1')
    const first = start(target(w1))
    await until('the first tunnel is up', () => first.health().state === 'up')
    const second = start(target(w1))
    await until('the second reports', () => second.health().lastError !== undefined)
    assert.match(
      second.health().lastError!,
      /^w1: 100\.64\.255\.1:6443 is already in use on the worker, so the API tunnel cannot listen there; .*controlPlane\.apiPort$/,
    )
    assert.equal(first.health().state, 'up')
    assert.equal(await fetchInside(w1), digest)
  })

  it('the network to the worker gone: keepalives notice, and the tunnel is back once the link is', async () => {
    const w2 = lab.host('w2')
    const tunnel = new ApiTunnel(target(w2), {
      keepalive: {intervalMs: 500, countMax: 2},
      backoff: {initialMs: 200, maxMs: 1000, resetAfterMs: 60_000},
    })
    tunnels.push(tunnel)
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    assert.equal((await w2.exec(['ip', 'link', 'set', 'eth0', 'down'])).code, 0)
    try {
      await until('the loss is noticed', () => tunnel.health().state !== 'up', 5000)
      assert.match(
        tunnel.health().lastError ?? '',
        /^w2: the API tunnel's SSH connection was lost \(.*\); reconnecting$/,
      )
    } finally {
      await w2.exec(['ip', 'link', 'set', 'eth0', 'up'])
    }
    // The old session lets go of the port once this machine's close reaches it; then the tunnel is back.
    await until('the tunnel is up again', () => tunnel.health().state === 'up', 60_000)
    assert.equal(await fetchInside(w2), digest)
  })

  it('a host key not in known_hosts under strict: down with the fingerprint sentence, never logged in', async () => {
    const stranger = lab.host('stranger')
    const knownHosts = join(dir, 'known_hosts')
    await copyFile(lab.knownHosts, knownHosts)
    execFileSync('ssh-keygen', ['-R', stranger.address, '-f', knownHosts], {stdio: 'ignore'})
    const logBefore = (await stranger.sshdLog()).length
    const tunnel = start(target(stranger, knownHosts))
    await until('the tunnel reports the key', () => tunnel.health().lastError !== undefined)
    const health = tunnel.health()
    assert.equal(health.state, 'down')
    assert.match(
      health.lastError!,
      /^stranger: the host key of [\d.]+:22, ssh-ed25519 SHA256:\S+, is not in .*known_hosts; check that fingerprint/,
    )
    await tunnel.stop()
    assert.deepEqual(await listeners(stranger), [])
    assert.doesNotMatch((await stranger.sshdLog()).slice(logBefore), /Accepted publickey/)
  })

  it('the keeper starts a tunnel per listed worker, stops the ones no longer listed, and stops all', async () => {
    const [w1, w2] = [lab.host('w1'), lab.host('w2')]
    const heard: string[] = []
    const keeper = new TunnelKeeper({onChange: (h) => heard.push(`${h.worker} ${h.state}`)})
    tunnels.push({stop: () => keeper.stopAll()})
    await keeper.sync([target(w1), target(w2)])
    await until('both up', () => keeper.health().every((h) => h.state === 'up'))
    assert.deepEqual(
      keeper.health().map((h) => h.worker),
      ['w1', 'w2'],
    )
    assert.equal(await fetchInside(w2), digest)

    assert.deepEqual(heard.filter((h) => h.endsWith(' up')).sort(), ['w1 up', 'w2 up'])
    heard.length = 0
    await keeper.sync([target(w2)])
    assert.deepEqual(heard, [], 'a tunnel let go of is not heard of any more')
    assert.deepEqual(
      keeper.health().map((h) => [h.worker, h.state]),
      [['w2', 'up']],
    )
    assert.deepEqual(await listeners(w1), [], 'w1’s tunnel is gone')
    assert.equal(await fetchInside(w2), digest, 'w2’s tunnel was left alone')

    // A changed target (another API port) replaces the worker's tunnel, once the join scoped sshd to it.
    const rescope = new SshConnections()
    try {
      const ssh = await rescope.host(labWorker(lab, w2))
      await allowRemoteForward(ssh, {user: 'root', address: ADDRESS, port: PORT + 1})
    } finally {
      await rescope.closeAll()
    }
    await keeper.sync([{...target(w2), bindPort: PORT + 1}])
    await until('w2 up on the new port', () => keeper.health()[0]?.state === 'up')
    assert.deepEqual(await listeners(w2), [], 'nothing left on the old port')
    const moved = await w2.exec(['ss', '-Htln', `sport = :${PORT + 1}`])
    assert.match(moved.stdout, new RegExp(` ${ADDRESS.replaceAll('.', '\\.')}:${PORT + 1} `))

    await keeper.stopAll()
    assert.deepEqual(keeper.health(), [])
    assert.deepEqual(await listeners(w2), [])
  })

  it('carries at most maxCarried connections at once and refuses more, saying so, while those carried go on', async () => {
    const w1 = lab.host('w1')
    const tunnel = new ApiTunnel(target(w1), {maxCarried: 3})
    tunnels.push(tunnel)
    await until('the tunnel is up', () => tunnel.health().state === 'up')
    // Six connections opened at once inside the worker and held: three reach the API, three are refused.
    const program = `
      const net = require('node:net'); let open = 0, closed = 0
      for (let i = 0; i < 6; i++) {
        const s = net.connect(${PORT}, '${ADDRESS}', () => { open++; s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n') })
        let got = false
        s.on('data', () => (got = true))
        s.on('close', () => { if (!got) closed++ })
        s.on('error', () => {})
      }
      setTimeout(() => { console.log(JSON.stringify({open, closed})); process.exit(0) }, 4000)`
    const r = await w1.exec([process.execPath, '-e', program])
    assert.equal(r.code, 0, r.stderr)
    const {closed} = JSON.parse(r.stdout) as {open: number; closed: number}
    assert.equal(closed, 3, `three connections were refused: ${r.stdout}`)
    assert.match(
      tunnel.health().lastError ?? '',
      /^w1: more than 3 connections at once through the API tunnel; refusing more$/,
    )
    assert.equal(tunnel.health().state, 'up')
    assert.equal(await fetchInside(w1), digest, 'the tunnel still carries once the others let go')
  })

  describe('through a bastion', () => {
    let behind: Lab

    before(async function () {
      requireLab(this)
      behind = await createLab({hosts: [{name: 'inner'}, {name: 'inner2'}], bastion: true})
      const connections = new SshConnections()
      try {
        for (const name of ['inner', 'inner2']) {
          const ssh = await connections.host(innerWorker(name))
          await ensureAdvertisedAddress(ssh, ADDRESS)
          await allowRemoteForward(ssh, {user: 'root', address: ADDRESS, port: PORT})
        }
      } finally {
        await connections.closeAll()
      }
    })
    after(async () => {
      await behind?.destroy()
    })

    const innerWorker = (name = 'inner') =>
      labWorker(behind, behind.host(name), {
        bastion: {address: behind.bastion!.address, port: 22, user: 'root', identityFile: behind.identityFile},
      })

    it('a worker this machine has no route to gets its tunnel through the bastion, and lets it go on stop()', async () => {
      const inner = behind.host('inner')
      const tunnel = start({worker: innerWorker(), bindAddress: ADDRESS, bindPort: PORT, targetPort})
      await until('the tunnel is up', () => tunnel.health().state === 'up')
      assert.equal(await fetchInside(inner), digest)
      const bastionSessions = async () =>
        (await behind.bastion!.exec(['ss', '-Htn', 'state', 'established', 'sport = :22'])).stdout.trim()
      assert.notEqual(await bastionSessions(), '', 'the tunnel runs over a connection to the bastion')
      await tunnel.stop()
      assert.deepEqual(await listeners(inner), [])
      await until('the bastion connection is closed too', async () => (await bastionSessions()) === '', 5000)
    })

    it('tunnels behind one bastion share its connection (one login there), and stopAll closes it', async () => {
      const keeper = new TunnelKeeper()
      tunnels.push({stop: () => keeper.stopAll()})
      const targets = ['inner', 'inner2'].map((name) => ({
        worker: innerWorker(name),
        bindAddress: ADDRESS,
        bindPort: PORT,
        targetPort,
      }))
      const logBefore = (await behind.bastion!.sshdLog()).length
      await keeper.sync(targets)
      await until('both up', () => keeper.health().every((h) => h.state === 'up') && keeper.health().length === 2)
      for (const name of ['inner', 'inner2']) assert.equal(await fetchInside(behind.host(name)), digest)
      const logins = (await behind.bastion!.sshdLog()).slice(logBefore).match(/Accepted publickey/g) ?? []
      assert.equal(logins.length, 1, 'one login on the bastion carries both tunnels')
      const sessions = (await behind.bastion!.exec(['ss', '-Htn', 'state', 'established', 'sport = :22'])).stdout
      assert.equal(sessions.trim().split('\n').length, 1, `one connection to the bastion: ${sessions}`)
      await keeper.stopAll()
      const left = async () =>
        (await behind.bastion!.exec(['ss', '-Htn', 'state', 'established', 'sport = :22'])).stdout.trim()
      await until('the bastion connection is closed', async () => (await left()) === '', 5000)
    })
  })
})
