import {strict as assert} from 'node:assert'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {WORKER_PATHS} from '../../src/agent/worker-paths.js'
import {createLab, type Lab, requireLab, runCommand} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {type InventoryWorker, writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, kubectl, STANDIN} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * Which Node is a worker's, and with which addresses (docs/architecture.md, "Workers"): `hybrid up` with
 * the k3s stand-in (an agentless server on this machine, named as a stand-in for k3s) and real lab hosts
 * over SSH in tunnel mode. w1 is reached at a forwarded address (a DNAT rule on this machine, as a NAT or
 * port forward in front of a worker), which it does not have on any interface.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

const CLUSTER = 'ident'

function inventory(scene: Scene, workers: InventoryWorker[]): Promise<string> {
  return writeLabInventory(scene.dir, scene.lab, workers, {
    name: CLUSTER,
    k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
    controlPlane: {agent: false, apiPort: scene.apiPort},
  })
}

interface NodeAddress {
  type: string
  address: string
}

async function nodeAddresses(scene: Scene, name: string): Promise<Record<string, string[]>> {
  const node = JSON.parse(await kubectl(scene, ['get', 'node', name, '-o', 'json'])) as {
    status: {addresses?: NodeAddress[]}
  }
  const out: Record<string, string[]> = {}
  for (const a of node.status.addresses ?? []) (out[a.type] ??= []).push(a.address)
  return out
}

describe('a worker’s Node: its addresses and whose it is (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    requireTool(this, 'iptables')
    requireTool(this, 'kubectl', 'kubernetes-client')
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-ident-'))
    const lab = await createLab({hosts: [{name: 'w1', forwarded: true}, {name: 'w2'}]})
    const stateDir = join(dir, 'state')
    scene = {
      dir,
      lab,
      apiPort: await freePort(),
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(stateDir, 'clusters', CLUSTER, 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', join(scene.dir, 'inventory.yaml')]).catch(
      () => undefined,
    )
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('joins a worker reached at a forwarded address: InternalIP is the host’s own address, ExternalIP the forwarded one', async () => {
    const s = scene!
    const w1 = s.lab.host('w1')
    const forwarded = w1.forwardedAddress!
    const file = await inventory(s, [{host: w1, address: forwarded}])
    const up = await hybrid(s, ['up', '--detach', '--inventory', file])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)

    const agentLog = await readFile(w1.pathOnMachine(WORKER_PATHS.supervisorLog), 'utf8')
    assert.doesNotMatch(agentLog, /not found in the host's network interfaces/, 'the kubelet took its node IP')
    const addresses = await nodeAddresses(s, 'w1')
    assert.deepEqual(addresses.InternalIP, [w1.address], JSON.stringify(addresses))
    assert.deepEqual(addresses.ExternalIP, [forwarded], JSON.stringify(addresses))

    const config = await readFile(w1.pathOnMachine(WORKER_PATHS.config), 'utf8')
    assert.doesNotMatch(config, /^node-ip:/m, 'node-ip is left to k3s')
    assert.match(config, new RegExp(`^node-external-ip: ${forwarded.replaceAll('.', '\\.')}$`, 'm'))
    assert.match(up.stderr, new RegExp(`w1: ${forwarded.replaceAll('.', '\\.')} is not an address of its interfaces`))
  })

  it('a Node of the worker’s name that another agent holds: the join fails for it in one sentence; workers remove leaves that Node alone', async () => {
    const s = scene!
    const [w1, w2] = [s.lab.host('w1'), s.lab.host('w2')]
    const net = s.lab.subnet.replace(/\.0\/24$/, '')
    // Another machine's agent took the name w2 first: k3s keeps its node password, and its Node is Ready.
    // Agents log in as `node` with the agent token's secret (the server's is refused for that user).
    const agentToken = (await readFile(join(s.dir, 'data', 'server', 'agent-token'), 'utf8')).trim()
    const secret = agentToken.replace(/^.*::node:/, '')
    const taken = await runCommand(
      'curl',
      [
        '-sk',
        '-K',
        '-',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `https://127.0.0.1:${s.apiPort}/v1-k3s/client-kubelet.crt`,
      ],
      `user = "node:${secret}"\nheader = "k3s-Node-Name: w2"\nheader = "k3s-Node-Password: another-machine"\n`,
    )
    assert.equal(taken.stdout, '200', taken.stderr)
    const other = {apiVersion: 'v1', kind: 'Node', metadata: {name: 'w2', labels: {'example.com/owner': 'other'}}}
    const created = await runCommand(
      'kubectl',
      ['--kubeconfig', s.kubeconfig, 'create', '-f', '-'],
      JSON.stringify(other),
    )
    assert.equal(created.code, 0, created.stderr)
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const status = {
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        addresses: [{type: 'InternalIP', address: `${net}.99`}],
      },
    }
    await kubectl(s, ['patch', 'node', 'w2', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)])

    const file = await inventory(s, [{host: w1, address: w1.forwardedAddress!}, {host: w2}])
    const added = await hybrid(s, ['workers', 'add', 'w2', '--inventory', file])
    assert.notEqual(added.code, 0, `${added.stdout}\n${added.stderr}`)
    assert.match(
      added.stderr,
      new RegExp(
        `w2: a Node named w2 exists that is not this worker: it lacks hybrid's label hybrid\\.dev/worker=${CLUSTER} and has InternalIP ${net.replaceAll('.', '\\.')}\\.99`,
      ),
    )
    const listed = await hybrid(s, ['workers', 'list', '--inventory', file])
    assert.match(listed.stdout, /^w2 .*another's Node of this name/m, listed.stdout)

    const removed = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', file])
    assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`)
    assert.match(removed.stderr, /w2: a Node named w2 exists that is not this worker.*, so hybrid does not drain it/)
    const left = JSON.parse(await kubectl(s, ['get', 'node', 'w2', '-o', 'json'])) as {
      metadata: {labels: Record<string, string>}
      spec: {unschedulable?: boolean}
    }
    assert.equal(left.metadata.labels['example.com/owner'], 'other', 'the other Node is still there')
    assert.notEqual(left.spec.unschedulable, true, 'and was not cordoned')
  })
})
