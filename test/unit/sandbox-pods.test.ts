import {strict as assert} from 'node:assert'
import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {KubernetesObject, V1PodSpec} from '@kubernetes/client-node'

import type {StatusResult} from '../../src/actions/status.js'
import {flannelManifests} from '../../src/kube/flannel.js'
import {SANDBOX_LABEL, SANDBOX_TAINT} from '../../src/sandbox/workarounds/taint.js'
import {renderStatus} from '../../src/ui/status.js'
import {REPO} from '../system/cluster-fixture.js'

/**
 * The sandbox's Node runs pods with host network only: its kubelet's CNI config is loopback alone
 * (src/k3s/sandbox-cni.ts), which gives containerd no `eth0` to set up a pod network with. So every
 * object hybrid applies that makes pods must keep them off that Node, or run them with hostNetwork.
 */

/** Every call site in src/ that applies objects to the cluster, and the objects each one applies. */
const APPLIED: Record<string, () => KubernetesObject[]> = {
  'src/phases/apply-cni.ts': () => [
    ...flannelManifests({clusterCidr: '10.42.0.0/16'}),
    ...flannelManifests({clusterCidr: '10.42.0.0/16,fd00:42::/56'}),
  ],
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

function podSpecOf(object: KubernetesObject): V1PodSpec | undefined {
  const spec = (
    object as {spec?: {template?: {spec?: V1PodSpec}; jobTemplate?: {spec?: {template?: {spec?: V1PodSpec}}}}}
  ).spec
  if (object.kind === 'Pod') return spec as V1PodSpec
  return spec?.template?.spec ?? spec?.jobTemplate?.spec?.template?.spec
}

/** Does a required node affinity keep the pod off every Node labelled hybrid.dev/sandbox=true? */
function excludesSandbox(pod: V1PodSpec): boolean {
  const [key, value] = SANDBOX_LABEL.split('=')
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
  const selector = pod.nodeSelector ?? {}
  if (key in selector && selector[key] !== value) return true
  if (terms.length === 0) return false
  // Terms are ORed: each one must rule the sandbox out.
  return terms.every((term) =>
    (term.matchExpressions ?? []).some(
      (e) =>
        e.key === key &&
        ((e.operator === 'NotIn' && (e.values ?? []).includes(value)) || e.operator === 'DoesNotExist'),
    ),
  )
}

/** Does the pod tolerate the sandbox's taint (when the taint workaround put it there)? */
function toleratesSandbox(pod: V1PodSpec): boolean {
  const [keyValue, effect] = SANDBOX_TAINT.split(':')
  const [key, value] = keyValue.split('=')
  return (pod.tolerations ?? []).some(
    (t) =>
      (t.effect === undefined || t.effect === effect) &&
      ((t.operator === 'Exists' && (t.key === undefined || t.key === key)) ||
        (t.key === key && (t.value ?? '') === value)),
  )
}

describe("the sandbox's Node runs pods with host network only", () => {
  it('every place in src/ that applies objects to the cluster is known to this test', async () => {
    const callers: string[] = []
    for (const file of await sourceFiles(join(REPO, 'src'))) {
      const text = await readFile(file, 'utf8')
      if (/\bapplyObjects\(/.test(text) && !file.endsWith(join('kube', 'apply.ts')))
        callers.push(file.slice(REPO.length))
    }
    assert.deepEqual(callers.sort(), Object.keys(APPLIED).sort())
  })

  it('every pod hybrid applies stays off the sandbox’s Node, or uses hostNetwork', () => {
    let pods = 0
    for (const [where, objects] of Object.entries(APPLIED)) {
      for (const object of objects()) {
        const pod = podSpecOf(object)
        if (!pod) continue
        pods++
        const what = `${object.kind} ${object.metadata?.name} (${where})`
        assert.ok(
          pod.hostNetwork === true || excludesSandbox(pod) || !toleratesSandbox(pod),
          `${what} could land on the sandbox's Node needing a pod network`,
        )
        // The taint is a workaround that may be left out (workarounds: none), so a pod must not rely on it.
        assert.ok(pod.hostNetwork === true || excludesSandbox(pod), `${what} relies on the sandbox's taint alone`)
      }
    }
    assert.ok(pods > 0, 'the walk found the pods hybrid applies')
  })

  it('status says so for the sandbox’s Node', () => {
    const status = {
      cluster: 'lab',
      up: true,
      phase: 'ready',
      workarounds: [],
      interceptor: null,
      nodes: [],
      workers: [],
      sandboxNode: {name: 'lab-server', hostNetworkOnly: true},
    } as unknown as StatusResult
    assert.match(
      renderStatus(status),
      /^sandbox Node lab-server: its CNI config is loopback only, so pods there run with host network only$/m,
    )
    assert.doesNotMatch(renderStatus({...status, sandboxNode: undefined}), /sandbox Node/)
  })
})
