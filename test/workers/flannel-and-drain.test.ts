import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {leftOn} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, kubectl, run, RUN_JS, STANDIN, waitFor} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * Workers behind hybrid's own flannel (docs/architecture.md, "The workers' CNI" and "Joining and leaving"),
 * with the k3s stand-in (a test fixture for k3s) on this machine and two real lab hosts in tunnel mode:
 * `spec.network.cni: flannel` makes the server run `flannel-backend: none`, so an agent's kubelet reports
 * its Node NotReady until the flannel DaemonSet's install-cni has put its config into the conf dir on that
 * worker (the stand-in imitates that copy). Then `workers remove` drains against a PodDisruptionBudget.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

const CONF = '/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist'
const NO_CNI =
  'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized'

interface NodeJson {
  metadata: {name: string; creationTimestamp: string}
  status: {
    conditions: Array<{type: string; status: string; reason?: string; message?: string; lastTransitionTime: string}>
  }
}

const readyOf = (n: NodeJson) => n.status.conditions.find((c) => c.type === 'Ready')!

async function node(scene: Scene, name: string): Promise<NodeJson> {
  return JSON.parse(await kubectl(scene, ['get', 'node', name, '-o', 'json'])) as NodeJson
}

/** Apply a manifest (JSON) with kubectl. */
async function apply(scene: Scene, manifest: object): Promise<void> {
  const file = join(scene.dir, `manifest-${Date.now()}.json`)
  await writeFile(file, JSON.stringify(manifest))
  await kubectl(scene, ['apply', '-f', file])
}

describe("workers behind hybrid's flannel, drained under a PodDisruptionBudget (stand-in k3s, real lab sshd)", function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-flannel-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: 'flannel',
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: false, apiPort},
        network: {cni: 'flannel'},
      },
    )
    scene = {
      dir,
      lab,
      inventory,
      apiPort,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(dir, 'state', 'clusters', 'flannel', 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it("joins each worker once flannel's install-cni put its config in the worker's conf dir: NotReady in the kubelet's words until then", async () => {
    const s = scene!
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, up.stderr)
    const cm = JSON.parse(
      await kubectl(s, ['get', 'configmap', 'kube-flannel-cfg', '-n', 'kube-system', '-o', 'json']),
    ) as {
      data: Record<string, string>
    }
    for (const name of ['w1', 'w2']) {
      const host = s.lab.host(name)
      const conf = await host.exec(['cat', CONF])
      assert.equal(conf.code, 0, `${name}: ${conf.stderr}`)
      assert.equal(conf.stdout, cm.data['cni-conf.json'], `${name} has the ConfigMap's cni-conf.json, not k3s's own`)
      const n = await node(s, name)
      assert.equal(readyOf(n).status, 'True')
      assert.ok(
        Date.parse(readyOf(n).lastTransitionTime) > Date.parse(n.metadata.creationTimestamp),
        `${name} turned Ready after it registered (NotReady until the config landed)`,
      )
    }

    // Without the DaemonSet and its copy, the kubelet says why; the next `up` applies flannel again first.
    await kubectl(s, ['delete', 'daemonset', 'kube-flannel-ds', '-n', 'kube-system'])
    assert.equal((await s.lab.host('w2').exec(['rm', CONF])).code, 0)
    const notReady = await waitFor('w2 NotReady', async () => {
      const ready = readyOf(await node(s, 'w2'))
      return ready.status === 'False' ? ready : undefined
    })
    assert.deepEqual([notReady.reason, notReady.message], ['KubeletNotReady', NO_CNI])
    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(readyOf(await node(s, 'w2')).status, 'True')
    assert.equal((await s.lab.host('w2').exec(['cat', CONF])).stdout, cm.data['cni-conf.json'])
  })

  it('workers remove fails at its drain timeout while a PodDisruptionBudget allows no disruption, naming the pod and budget; relaxed mid-drain, the drain completes; workers add joins it again', async () => {
    const s = scene!
    await apply(s, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'web-1', namespace: 'default', labels: {app: 'web'}},
      spec: {nodeName: 'w2', containers: [{name: 'web', image: 'nginx:1.27'}]},
    })
    await apply(s, {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: {name: 'web', namespace: 'default'},
      spec: {minAvailable: 1, selector: {matchLabels: {app: 'web'}}},
    })

    const started = Date.now()
    const blocked = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', s.inventory, '--drain-timeout', '7'])
    const took = Date.now() - started
    assert.equal(blocked.code, 1, blocked.stderr)
    assert.match(
      blocked.stderr,
      /cannot drain Node w2 within 7 s: evicting pod default\/web-1 would violate PodDisruptionBudget default\/web \(The disruption budget web needs 1 healthy pods and has 1 currently\); relax the budget or give the drain more time \(--drain-timeout\)/,
    )
    assert.ok(took >= 7000, `the drain waited its whole timeout (${took} ms)`)
    assert.match(await kubectl(s, ['get', 'pod', 'web-1', '-o', 'name']), /pod\/web-1/)
    assert.notDeepEqual(await leftOn(s.lab.host('w2'), s.apiPort), [], 'w2 keeps its agent: nothing past the drain ran')

    const child = spawn(
      process.execPath,
      [RUN_JS, 'workers', 'remove', 'w2', '--inventory', s.inventory, '--drain-timeout', '120'],
      {
        env: s.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    try {
      await waitFor('a refused eviction', async () => (/will retry after 5s/.test(stderr) ? true : undefined), 60_000)
      await kubectl(s, ['patch', 'pdb', 'web', '--type=merge', '-p', '{"spec":{"minAvailable":0}}'])
      assert.equal(await exited, 0, stderr)
    } finally {
      child.kill('SIGKILL')
    }
    assert.equal(
      (await run('kubectl', ['--kubeconfig', s.kubeconfig, 'get', 'pod', 'web-1'])).code,
      1,
      'web-1 was evicted',
    )
    assert.equal((await run('kubectl', ['--kubeconfig', s.kubeconfig, 'get', 'node', 'w2'])).code, 1, 'w2 is gone')
    assert.deepEqual(await leftOn(s.lab.host('w2'), s.apiPort), [], 'and nothing of hybrid is left on w2')

    // workers add, with flannel applied already: w2 registers NotReady, gets the config again, turns Ready
    const added = await hybrid(s, ['workers', 'add', 'w2', '--inventory', s.inventory])
    assert.equal(added.code, 0, added.stderr)
    assert.equal(readyOf(await node(s, 'w2')).status, 'True')
    assert.equal((await s.lab.host('w2').exec(['test', '-s', CONF])).code, 0, "flannel's config is on w2 again")
  })
})
