import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {AppsV1Api, CoreV1Api, type KubernetesObject, type V1Node} from '@kubernetes/client-node'

import {HybridError} from '../../src/errors.js'
import {applyObjects, compareObjects, contains, deleteObjects, digestOf} from '../../src/kube/apply.js'
import {flannelManifests} from '../../src/kube/flannel.js'
import {requireTool} from '../helpers/requires.js'
import {startStandinServer, type StandinServer} from '../helpers/standin-server.js'

/**
 * Applying the workers' flannel through a real k3s stand-in server (`k3s server --disable-agent` on
 * 127.0.0.1, a test fixture): create, "already" on a second run, update on a change (ours or someone
 * else's), delete; and what kubectl shows of it.
 */
const run = promisify(execFile)
const FLANNEL = [
  'ServiceAccount kube-system/flannel',
  'ClusterRole flannel',
  'ClusterRoleBinding flannel',
  'ConfigMap kube-system/kube-flannel-cfg',
  'DaemonSet kube-system/kube-flannel-ds',
]
const outcomes = (results: Array<{object: string; outcome: string}>) => results.map((r) => `${r.object}: ${r.outcome}`)
const all = (outcome: string) => FLANNEL.map((o) => `${o}: ${outcome}`)

/** A Node as k3s registers one (kubernetes.io/os from the kubelet), with extra labels and taints. */
function node(name: string, labels: Record<string, string> = {}, taints: V1Node['spec'] = {}): V1Node {
  return {metadata: {name, labels: {'kubernetes.io/os': 'linux', ...labels}}, spec: taints}
}

describe('applying manifests through the API (k3s stand-in server)', function () {
  this.timeout(60_000)
  let server: StandinServer | undefined
  let cacheDir: string | undefined

  beforeEach(async () => {
    server = await startStandinServer(['--disable-agent'])
    cacheDir = await mkdtemp(join(tmpdir(), 'hybrid-kubectl-'))
  })
  afterEach(async () => {
    await server?.stop()
    if (cacheDir) await rm(cacheDir, {recursive: true, force: true})
    server = cacheDir = undefined
  })

  const kubectl = async (...args: string[]) =>
    (await run('kubectl', ['--kubeconfig', server!.kubeconfig, '--cache-dir', cacheDir!, ...args])).stdout

  it("applies flannel: created, then already there, updated for a new CIDR or someone's edit, then deleted", async () => {
    const {kc} = server!
    const apps = kc.makeApiClient(AppsV1Api)
    const core = kc.makeApiClient(CoreV1Api)

    assert.deepEqual(outcomes(await applyObjects(kc, flannelManifests({clusterCidr: '10.42.0.0/16'}))), all('created'))
    const before = await apps.readNamespacedDaemonSet({name: 'kube-flannel-ds', namespace: 'kube-system'})
    assert.deepEqual(
      outcomes(await applyObjects(kc, flannelManifests({clusterCidr: '10.42.0.0/16'}))),
      all('unchanged'),
      'a second run changes nothing, although the API server added its defaults',
    )
    const after = await apps.readNamespacedDaemonSet({name: 'kube-flannel-ds', namespace: 'kube-system'})
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion, 'nothing was written')

    const wider = flannelManifests({clusterCidr: '10.100.0.0/16'})
    const rvBefore = (await core.readNamespacedConfigMap({name: 'kube-flannel-cfg', namespace: 'kube-system'})).metadata
      ?.resourceVersion
    assert.deepEqual(
      outcomes(await compareObjects(kc, wider)).filter((o) => !o.endsWith('unchanged')),
      ['ConfigMap kube-system/kube-flannel-cfg: updated'],
      'compared first (a dry run): what applying would change',
    )
    const rvAfter = (await core.readNamespacedConfigMap({name: 'kube-flannel-cfg', namespace: 'kube-system'})).metadata
      ?.resourceVersion
    assert.equal(rvAfter, rvBefore, 'comparing wrote nothing')
    assert.deepEqual(outcomes(await applyObjects(kc, wider)), [
      ...all('unchanged').slice(0, 3),
      'ConfigMap kube-system/kube-flannel-cfg: updated',
      'DaemonSet kube-system/kube-flannel-ds: unchanged',
    ])
    const cm = await core.readNamespacedConfigMap({name: 'kube-flannel-cfg', namespace: 'kube-system'})
    assert.equal(JSON.parse(cm.data!['net-conf.json']).Network, '10.100.0.0/16')

    // Someone changes the DaemonSet's image behind hybrid's back: the next run puts it right.
    await apps.patchNamespacedDaemonSet(
      {
        name: 'kube-flannel-ds',
        namespace: 'kube-system',
        body: [{op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'example.com/flannel:mine'}],
      },
      undefined,
    )
    const again = await applyObjects(kc, flannelManifests({clusterCidr: '10.100.0.0/16'}))
    assert.deepEqual(outcomes(again).at(-1), 'DaemonSet kube-system/kube-flannel-ds: updated')
    const fixed = await apps.readNamespacedDaemonSet({name: 'kube-flannel-ds', namespace: 'kube-system'})
    assert.match(fixed.spec!.template.spec!.containers[0].image!, /^ghcr\.io\/flannel-io\/flannel:v/)

    const objects = flannelManifests({clusterCidr: '10.100.0.0/16'})
    assert.deepEqual(outcomes(await deleteObjects(kc, objects)), all('deleted'))
    assert.deepEqual(outcomes(await deleteObjects(kc, objects)), all('absent'), 'deleting again is fine')
    await assert.rejects(
      apps.readNamespacedDaemonSet({name: 'kube-flannel-ds', namespace: 'kube-system'}),
      (e: {code?: number}) => e.code === 404,
    )
  })

  it('removes what the manifest no longer has, and keeps what others added to labels and annotations', async () => {
    const {kc} = server!
    const core = kc.makeApiClient(CoreV1Api)
    const cm = (data: Record<string, string>): KubernetesObject =>
      ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'c', namespace: 'default'}, data}) as KubernetesObject
    assert.deepEqual(outcomes(await applyObjects(kc, [cm({a: '1', b: '2'})])), ['ConfigMap default/c: created'])
    await core.patchNamespacedConfigMap(
      {name: 'c', namespace: 'default', body: [{op: 'add', path: '/metadata/labels', value: {owner: 'someone'}}]},
      undefined,
    )
    assert.deepEqual(outcomes(await applyObjects(kc, [cm({a: '1'})])), ['ConfigMap default/c: updated'])
    const live = await core.readNamespacedConfigMap({name: 'c', namespace: 'default'})
    assert.deepEqual(live.data, {a: '1'}, 'b was removed from the manifest, so it is gone')
    assert.equal(live.metadata?.labels?.owner, 'someone')
    assert.deepEqual(outcomes(await applyObjects(kc, [cm({a: '1'})])), ['ConfigMap default/c: unchanged'])
  })

  it('kubectl shows the DaemonSet with its affinity, scheduled for the workers and not the sandbox Node', async function () {
    requireTool(this, 'kubectl', 'kubernetes-client')
    const {kc} = server!
    const core = kc.makeApiClient(CoreV1Api)
    const sandboxTaint = {taints: [{key: 'hybrid.dev/sandbox', value: 'true', effect: 'NoSchedule'}]}
    await core.createNode({body: node('lab-server', {'hybrid.dev/sandbox': 'true'}, sandboxTaint)})
    await core.createNode({body: node('w1')})
    await applyObjects(kc, flannelManifests({clusterCidr: '10.42.0.0/16'}))

    const ds = JSON.parse(await kubectl('get', 'daemonset', '-n', 'kube-system', 'kube-flannel-ds', '-o', 'json'))
    const terms = ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    assert.deepEqual(terms.nodeSelectorTerms[0].matchExpressions[1], {
      key: 'hybrid.dev/sandbox',
      operator: 'NotIn',
      values: ['true'],
    })
    assert.equal(
      ds.status.desiredNumberScheduled,
      1,
      'w1 only: flannel tolerates NoSchedule, the affinity keeps it off',
    )

    await core.createNode({body: node('w2')})
    const table = await kubectl('get', 'daemonsets', '-n', 'kube-system')
    assert.match(table, /^NAME\s+DESIRED\s+CURRENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+NODE SELECTOR\s+AGE$/m)
    assert.match(table, /^kube-flannel-ds\s+2\s+0\s+0\s+0\s+0\s+<none>\s+\S+$/m, 'a new worker counts at once')
  })

  it("fails with one sentence naming the object and the API's reason", async () => {
    const {kc} = server!
    const stray: KubernetesObject = {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x', namespace: 'nowhere'}}
    await assert.rejects(applyObjects(kc, [stray]), (e: unknown) => {
      assert.ok(e instanceof HybridError)
      assert.equal(e.code, 'KUBE_APPLY_FAILED')
      assert.equal(e.message, 'cannot apply ConfigMap nowhere/x: namespaces "nowhere" not found')
      return true
    })
    const unknown: KubernetesObject = {apiVersion: 'example.com/v1', kind: 'Widget', metadata: {name: 'w'}}
    await assert.rejects(
      applyObjects(kc, [unknown]),
      /^HybridError: cannot apply Widget w: no matches for kind "Widget" in version "example\.com\/v1"$/,
    )
  })
})

describe('comparing a manifest with the live object', () => {
  it('ignores what the server added, but not a changed value or a list of another length', () => {
    const wanted = {spec: {containers: [{name: 'c', image: 'i:1'}]}}
    assert.ok(contains({spec: {dnsPolicy: 'ClusterFirst', containers: [{name: 'c', image: 'i:1', x: 1}]}}, wanted))
    assert.ok(!contains({spec: {containers: [{name: 'c', image: 'i:2'}]}}, wanted))
    assert.ok(!contains({spec: {containers: [{name: 'c', image: 'i:1'}, {name: 'd'}]}}, wanted))
    assert.ok(!contains({spec: {}}, wanted))
  })

  it('digests a manifest whatever the order of its keys', () => {
    assert.equal(
      digestOf({kind: 'A', metadata: {name: 'a', labels: {x: '1'}}}),
      digestOf({metadata: {labels: {x: '1'}, name: 'a'}, kind: 'A'}),
    )
    assert.notEqual(digestOf({kind: 'A', metadata: {name: 'a'}}), digestOf({kind: 'A', metadata: {name: 'b'}}))
  })
})
