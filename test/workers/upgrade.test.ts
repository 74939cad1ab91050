import {strict as assert} from 'node:assert'
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, kubectl, run, STANDIN} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * Upgrades (docs/architecture.md, "Upgrades") between two "versions" of the k3s stand-in (a test fixture for
 * k3s): copies of it whose embedded VERSION differs, so, as a real k3s binary, each reports its own version
 * (`--version`, the API's /version, its kubelets' nodeInfo) whatever the inventory says. Two real lab hosts
 * in tunnel mode; a PodDisruptionBudget blocks the first worker's drain.
 */

const OLD = 'v1.34.1+k3s1'
const NEW = 'v1.34.2+k3s1'

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
  readonly binaries: Record<string, string>
}

interface NodeJson {
  spec: {unschedulable?: boolean}
  status: {nodeInfo: {kubeletVersion: string}}
}

async function node(s: Scene, name: string): Promise<NodeJson> {
  return JSON.parse(await kubectl(s, ['get', 'node', name, '-o', 'json'])) as NodeJson
}

/** The inventory with spec.k3s at `version` (the stand-in copy of that version) and spec.upgrade. */
async function setVersion(s: Scene, version: string, binary = s.binaries[version]): Promise<void> {
  const doc = JSON.parse(await readFile(s.inventory, 'utf8')) as {spec: Record<string, unknown>}
  doc.spec.k3s = {version, binary}
  doc.spec.upgrade = {maxUnavailable: 1, drainTimeoutSeconds: 5}
  await writeFile(s.inventory, JSON.stringify(doc, null, 2))
}

async function apply(s: Scene, manifest: object): Promise<void> {
  const file = join(s.dir, `manifest-${Date.now()}.json`)
  await writeFile(file, JSON.stringify(manifest))
  await kubectl(s, ['apply', '-f', file])
}

describe('upgrading a running cluster between two stand-in k3s versions (real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-upgrade-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    const standin = await readFile(STANDIN, 'utf8')
    const binaries: Record<string, string> = {}
    for (const version of [OLD, NEW, 'v1.33.5+k3s1']) {
      // A copy outside the repository finds its server's sqlite driver in the repository's node_modules.
      const copy = standin
        .replace(/const VERSION = '[^']*'/, `const VERSION = '${version}'`)
        .replace('createRequire(fs.realpathSync(process.argv[1]))', `createRequire(${JSON.stringify(STANDIN)})`)
      assert.ok(copy.includes(`createRequire(${JSON.stringify(STANDIN)})`), 'the stand-in loads its sqlite driver')
      assert.ok(version === OLD || copy.includes(`const VERSION = '${version}'`), 'the stand-in embeds its VERSION')
      binaries[version] = join(dir, `k3s-${version}`)
      await writeFile(binaries[version], copy)
      await chmod(binaries[version], 0o755)
    }
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {name: 'upgrade', k3s: {version: OLD, binary: binaries[OLD]}, controlPlane: {agent: false, apiPort}},
    )
    scene = {
      dir,
      lab,
      inventory,
      binaries,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60', HYBRID_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(dir, 'state', 'clusters', 'upgrade', 'kubeconfig'),
    }
    await setVersion(scene, OLD)
    const up = await hybrid(scene, ['up', '--inventory', inventory, '--detach'])
    assert.equal(up.code, 0, up.stderr)
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('refuses a downgrade unless --allow-downgrade, changing nothing', async () => {
    const s = scene!
    await setVersion(s, 'v1.33.5+k3s1')
    const refused = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(
      refused.stderr,
      /cluster upgrade runs k3s v1\.34\.1\+k3s1, and the inventory \(.*\) asks for the older v1\.33\.5\+k3s1: a downgrade is refused; .*--allow-downgrade/,
    )
    assert.equal((await node(s, 'w1')).status.nodeInfo.kubeletVersion, OLD)
  })

  it('stops the rollout at a drain a PodDisruptionBudget blocks (exit 3, the rest stay old), shows the order under --dry-run, and the next up goes on', async () => {
    const s = scene!
    await apply(s, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'web-1', namespace: 'default', labels: {app: 'web'}},
      spec: {nodeName: 'w1', containers: [{name: 'web', image: 'nginx:1.27'}]},
    })
    await apply(s, {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: {name: 'web', namespace: 'default'},
      spec: {minAvailable: 1, selector: {matchLabels: {app: 'web'}}},
    })
    await setVersion(s, NEW)

    const stopped = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(stopped.code, 3, stopped.stderr)
    assert.match(
      stopped.stderr,
      /the upgrade to k3s v1\.34\.2\+k3s1 stopped \(w1 failed: cannot drain Node w1 within 5 s: evicting pod default\/web-1 would violate PodDisruptionBudget default\/web .*\(spec\.upgrade\.drainTimeoutSeconds\)\); w2 keeps their k3s; the server runs v1\.34\.2\+k3s1/,
    )
    // The server went first and runs the new binary; the workers keep the old one.
    const version = JSON.parse(await kubectl(s, ['get', '--raw', '/version'])) as {gitVersion: string}
    assert.equal(version.gitVersion, NEW)
    const w1 = await node(s, 'w1')
    const w2 = await node(s, 'w2')
    assert.deepEqual([w1.status.nodeInfo.kubeletVersion, w2.status.nodeInfo.kubeletVersion], [OLD, OLD])
    assert.equal(w1.spec.unschedulable, true, 'w1 stays cordoned: nothing after its drain ran')
    assert.notEqual(w2.spec.unschedulable, true, 'w2 was never touched')
    const onW2 = await s.lab.host('w2').exec(['/usr/local/bin/k3s', '--version'])
    assert.match(onW2.stdout, /k3s version v1\.34\.1\+k3s1/)

    const dry = await hybrid(s, ['up', '--inventory', s.inventory, '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    const first = dry.stdout.indexOf('batch 1 of 2: cordon and drain Node w1')
    const second = dry.stdout.indexOf('batch 2 of 2: cordon and drain Node w2')
    assert.ok(first >= 0 && second > first, `w1's batch, then w2's:\n${dry.stdout}`)

    await kubectl(s, ['patch', 'pdb', 'web', '--type=merge', '-p', '{"spec":{"minAvailable":0}}'])
    const resumed = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(resumed.code, 0, resumed.stderr)
    for (const name of ['w1', 'w2']) {
      const n = await node(s, name)
      assert.equal(n.status.nodeInfo.kubeletVersion, NEW, `${name} reports the new version`)
      assert.notEqual(n.spec.unschedulable, true, `${name} is uncordoned`)
      const there = await s.lab.host(name).exec(['/usr/local/bin/k3s', '--version'])
      assert.match(there.stdout, /k3s version v1\.34\.2\+k3s1/)
    }
    assert.equal(
      (await run('kubectl', ['--kubeconfig', s.kubeconfig, 'get', 'pod', 'web-1'])).code,
      1,
      'web-1 was evicted by the drain',
    )
    const status = await hybrid(s, ['status', '--inventory', s.inventory])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /w1\s+Ready\s+v1\.34\.2\+k3s1/)
    assert.match(status.stdout, /w2\s+Ready\s+v1\.34\.2\+k3s1/)
    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already up/)
  })
})
