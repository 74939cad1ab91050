import {strict as assert} from 'node:assert'
import {once} from 'node:events'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {fetchFromPeer, startPeerServer} from '../../src/agent/peer-copy.js'
import {SshConnections} from '../../src/remote/connections.js'
import {bytesFromCoordinator, countFromCoordinator, labGateway, paddedStandin} from '../helpers/coordinator-bytes.js'
import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {labWorker, writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort} from '../system/cluster-fixture.js'
import {hybrid, until} from './scene.js'

/**
 * spec.k3s.distribute (docs/architecture.md, "Distributing the k3s binary") on three real lab hosts with
 * the k3s stand-in (an agentless server here, the agents on the hosts), its "binary" padded to 8 MiB so
 * that what the coordinator sends each worker is told apart from the join's commands: counted by an
 * iptables rule in each host for the coordinator's SSH traffic. `peers`: w1 gets the upload and serves
 * w2 and w3, and nothing of its server is left; a tampered copy or a wrong token is refused; then
 * `worker-download` from a release server this test runs on the lab's gateway address.
 */

const CLUSTER = 'distrib'
const PAD_MIB = 8
const BIN = '/usr/local/bin'

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly env: NodeJS.ProcessEnv
  /** The padded stand-in and its sha256. */
  readonly binary: string
  readonly sha256: string
  /** The machine's address on the lab's bridge: where the coordinator's SSH comes from. */
  readonly gateway: string
}

async function writeInventory(s: Pick<Scene, 'dir' | 'lab' | 'binary'>, distribute: string, apiPort: number) {
  return writeLabInventory(
    s.dir,
    s.lab,
    s.lab.hosts.map((host) => ({host})),
    {
      name: CLUSTER,
      k3s: {version: 'v1.34.1+k3s1', binary: s.binary, distribute},
      controlPlane: {agent: false, apiPort},
    },
  )
}

async function digestOn(host: LabHost, path = `${BIN}/k3s`): Promise<string> {
  return (await host.exec(['sh', '-c', 'sha256sum "$1" | cut -d" " -f1', 'sh', path])).stdout.trim()
}

/** What the peer server would leave: a perl process, a listening port other than sshd's, a file beside k3s. */
async function peerLeftovers(host: LabHost, port?: number): Promise<string[]> {
  const left: string[] = []
  const ps = await host.exec(['sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f"; echo; done'])
  for (const line of ps.stdout.split('\n')) if (line.startsWith('perl ')) left.push(`process: ${line.slice(0, 60)}`)
  if (port !== undefined) {
    const listening = await host.exec(['ss', '-Hltn', `sport = :${port}`])
    if (listening.stdout.trim()) left.push(`listening: ${listening.stdout.trim()}`)
  }
  const files = (await host.exec(['ls', '-A', BIN])).stdout.split('\n').filter((f) => f && f !== 'k3s')
  left.push(...files.map((f) => `file: ${BIN}/${f}`))
  return left
}

async function logOf(s: Scene): Promise<string> {
  return readFile(join(s.env.HYBRID_STATE_DIR!, 'logs', 'hybrid.log'), 'utf8').catch(() => '')
}

describe('distributing the k3s binary: peers and worker-download (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined
  let apiPort = 0

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-distribute-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}, {name: 'w3'}]})
    const padded = await paddedStandin(dir, PAD_MIB)
    apiPort = await freePort()
    const inventory = await writeInventory({dir, lab, ...padded}, 'peers', apiPort)
    scene = {
      dir,
      lab,
      inventory,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '90'}),
      ...padded,
      gateway: labGateway(lab),
    }
  })

  after(async () => {
    if (!scene) return
    // The lab's hosts go whole (their processes with their PID namespaces): the workers need no uninstall.
    await hybrid(scene, ['down', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('peers: the coordinator sends the binary to w1 only, w2 and w3 fetch it from w1, and nothing of the server stays', async () => {
    const s = scene!
    for (const host of s.lab.hosts) await countFromCoordinator(host, s.gateway)
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const sent = Object.fromEntries(
      await Promise.all(s.lab.hosts.map(async (h) => [h.name, await bytesFromCoordinator(h)])),
    )
    assert.ok(sent.w1 > PAD_MIB << 20, `the coordinator sent w1 the binary (${sent.w1} bytes)`)
    for (const name of ['w2', 'w3'])
      assert.ok(
        sent[name] < 1 << 20,
        `the coordinator sent ${name} commands only, not the binary (${sent[name]} bytes)`,
      )
    for (const host of s.lab.hosts) assert.equal(await digestOn(host), s.sha256, `${host.name} has the binary`)
    const log = await logOf(s)
    const serving = log.split('\n').find((l) => l.includes('serving k3s to the others'))
    assert.ok(serving, `w1 served:\n${log.slice(-3000)}`)
    const port = (JSON.parse(serving) as {port: number}).port
    for (const name of ['w2', 'w3']) assert.match(log, new RegExp(`"host":"${name}".*k3s fetched from peer w1`))
    for (const host of s.lab.hosts)
      assert.deepEqual(
        await peerLeftovers(host, host.name === 'w1' ? port : undefined),
        [],
        `nothing left on ${host.name}`,
      )
  })

  it('a copy from a peer with another digest, or asked for with another token, is refused and the old file stays', async () => {
    const s = scene!
    const [w1, w2] = [s.lab.host('w1'), s.lab.host('w2')]
    await w1.exec(['sh', '-c', `cp ${BIN}/k3s /tmp/k3s-tampered && printf x >> /tmp/k3s-tampered`])
    const connections = new SshConnections({})
    try {
      const [one, two] = [await connections.host(labWorker(s.lab, w1)), await connections.host(labWorker(s.lab, w2))]
      const server = await startPeerServer(one, {
        file: '/tmp/k3s-tampered',
        bind: w1.address,
        address: w1.address,
        limitSeconds: 60,
      })
      try {
        await assert.rejects(fetchFromPeer(two, server.source, s.sha256, 30), (error: Error) => {
          assert.match(
            error.message,
            /^w2: the k3s fetched from peer w1 \(.*\) has sha256 [0-9a-f]{64}, not [0-9a-f]{64}; it was removed and \/usr\/local\/bin\/k3s left as it was$/,
          )
          return true
        })
        const wrongToken = {...server.source, token: 'f'.repeat(64)}
        await assert.rejects(
          fetchFromPeer(two, wrongToken, s.sha256, 30),
          /w2: fetching k3s from peer w1 .* failed: .* sent nothing/,
        )
        assert.equal(await digestOn(w2), s.sha256, 'w2 keeps its binary')
        assert.deepEqual(await peerLeftovers(w2), [], 'no temp file on w2')
        assert.notDeepEqual(await peerLeftovers(w1, server.source.port), [], 'the server runs until stopped')
      } finally {
        await server.stop()
      }
      assert.deepEqual(await peerLeftovers(w1, server.source.port), [], 'the stopped server left nothing')
      // A coordinator that dies takes its connection with it: the server sees its input end, and ends too.
      const orphan = await startPeerServer(one, {
        file: '/tmp/k3s-tampered',
        bind: w1.address,
        address: w1.address,
        limitSeconds: 60,
      })
      await one.close()
      await until(
        'the orphaned server ends',
        async () => ((await peerLeftovers(w1, orphan.source.port)).length === 0 ? true : undefined),
        10_000,
      )
    } finally {
      await connections.closeAll()
      await w1.exec(['rm', '-f', '/tmp/k3s-tampered'])
    }
  })

  it('worker-download: workers fetch the release themselves, checked; a worker served another digest gets the upload', async () => {
    const s = scene!
    const [w1, w2, w3] = s.lab.hosts
    const good = await readFile(s.binary)
    const bad = Buffer.concat([good, Buffer.from('x')])
    const asked: string[] = []
    const server: Server = createServer((request, response) => {
      const from = request.socket.remoteAddress ?? ''
      asked.push(`${from} ${request.url}`)
      if (request.url !== '/v1.34.1%2Bk3s1/k3s') return void response.writeHead(404).end()
      response.writeHead(200, {'content-length': from === w2.address ? bad.length : good.length})
      response.end(from === w2.address ? bad : good)
    })
    server.listen(0, s.gateway)
    await once(server, 'listening')
    try {
      const base = `http://${s.gateway}:${(server.address() as AddressInfo).port}`
      await writeInventory(s, 'worker-download', apiPort)
      for (const host of [w2, w3]) await host.exec(['rm', '-f', `${BIN}/k3s`])
      for (const host of s.lab.hosts) await countFromCoordinator(host, s.gateway)
      const up = await hybrid({env: {...s.env, HYBRID_WORKER_RELEASE_URL: base}}, [
        'up',
        '--inventory',
        s.inventory,
        '--detach',
      ])
      assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
      assert.deepEqual(asked.sort(), [`${w2.address} /v1.34.1%2Bk3s1/k3s`, `${w3.address} /v1.34.1%2Bk3s1/k3s`])
      for (const host of s.lab.hosts) assert.equal(await digestOn(host), s.sha256, `${host.name} has the binary`)
      assert.ok((await bytesFromCoordinator(w3)) < 1 << 20, 'w3 downloaded it: the coordinator sent commands only')
      assert.ok(
        (await bytesFromCoordinator(w2)) > PAD_MIB << 20,
        'w2 was served another digest: the coordinator uploaded it',
      )
      assert.ok((await bytesFromCoordinator(w1)) < 1 << 20, 'w1 had it already')
      assert.match(
        up.stderr,
        /w2: the k3s fetched from http:\S+ has sha256 [0-9a-f]{64}, not [0-9a-f]{64}; it was removed and \/usr\/local\/bin\/k3s left as it was, so k3s is uploaded from the coordinator/,
      )
      for (const host of s.lab.hosts) assert.deepEqual(await peerLeftovers(host), [], `nothing left on ${host.name}`)
    } finally {
      server.close()
    }
  })
})
