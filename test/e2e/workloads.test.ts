import {strict as assert} from 'node:assert'
import {randomBytes} from 'node:crypto'
import {access, constants, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {requireLab} from '../helpers/lab.js'
import {requireTool, skipUnless} from '../helpers/requires.js'
import {leftOn} from '../helpers/worker-leftovers.js'
import {hybrid, kubectl, nodes, recordPids} from '../system/cluster-fixture.js'
import {
  DEFAULT_IMAGE,
  deployment,
  destroyScene,
  imageArchives,
  lastSeen,
  makeWorkloadScene,
  pods,
  type PodSeen,
  prepareWorkers,
  pullFailures,
  pullFailuresAnywhere,
  SANDBOX_NODE,
  WORKERS,
  type WorkloadScene,
} from './workload-scene.js'

/**
 * The e2e tier's workloads: with a real k3s (HYBRID_K3S_BINARY), `hybrid up` runs the server with its agent
 * on this machine and joins three lab hosts in tunnel mode, with hybrid's flannel on them; then pods run
 * on the workers, talk to each other across workers and to the API through the `kubernetes` Service (the
 * worker's end of the SSH tunnel), `kubectl logs`/`exec` reach them through the agents' tunnels, and a
 * removed worker's pod moves to the others. The workers have no route off this machine, so the images
 * come as archives in HYBRID_E2E_IMAGES (k3s's airgap images, flannel's, and HYBRID_E2E_IMAGE).
 */
const binary = process.env.HYBRID_K3S_BINARY
const image = process.env.HYBRID_E2E_IMAGE || DEFAULT_IMAGE
const APP = 'e2e-netexec'
const ADVERTISED = '100.64.255.1'

/**
 * From inside a pod: the Service address it was given, then /version over HTTPS to kubernetes.default.svc
 * at that address (no DNS), checked against the pod's CA, with its service account token on curl's
 * standard input (not in an argv).
 */
const API_FROM_POD = `sa=/var/run/secrets/kubernetes.io/serviceaccount
echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
printf 'header = "Authorization: Bearer %s"\\n' "$(cat "$sa/token")" |
  curl -sS --fail --max-time 10 -K - --cacert "$sa/ca.crt" \\
    --resolve "kubernetes.default.svc:$KUBERNETES_SERVICE_PORT:$KUBERNETES_SERVICE_HOST" \\
    "https://kubernetes.default.svc:$KUBERNETES_SERVICE_PORT/version"`

describe('e2e: workloads on real k3s workers', function () {
  this.timeout(900_000)
  let scene: WorkloadScene | undefined
  /** The workload's pod on each worker, once all three run. */
  let placed = new Map<string, PodSeen>()

  before(async function () {
    skipUnless(
      this,
      Boolean(binary),
      `HYBRID_K3S_BINARY is not set: no real k3s binary on this machine (the release cannot be downloaded here); set it to run the workload tier, with HYBRID_E2E_IMAGES naming image archives for the lab workers (they have no route off this machine), the workload image among them: HYBRID_E2E_IMAGE, default ${DEFAULT_IMAGE}, which no registry is guaranteed to serve`,
    )
    await access(binary!, constants.X_OK).catch(() =>
      assert.fail(`HYBRID_K3S_BINARY=${binary} is not an executable file`),
    )
    requireLab(this)
    requireTool(this, 'kubectl', 'kubernetes-client')
    const archives = await imageArchives(process.env.HYBRID_E2E_IMAGES, image)
    scene = await makeWorkloadScene(binary!)
    await prepareWorkers(scene, archives)
    const up = await hybrid(scene, ['up', '--inventory', scene.inventory, '--detach'], {timeoutMs: 780_000})
    await recordPids(scene)
    assert.equal(up.code, 0, `hybrid up: ${up.stdout}\n${up.stderr}${await pullFailuresAnywhere(scene)}`)
  })

  after(async () => {
    if (scene) await destroyScene(scene)
  })

  /** The workload's pods; an image a worker could not pull ends the wait with what to add to the archives. */
  async function workload(): Promise<PodSeen[]> {
    const seen = await pods(scene!, ['-l', `app=${APP}`])
    const failed = pullFailures(seen)
    if (failed.length > 0)
      assert.fail(`the workers could not pull (put the image in HYBRID_E2E_IMAGES): ${failed.join('; ')}`)
    return seen
  }

  function podOn(node: string): PodSeen {
    const pod = placed.get(node)
    assert.ok(pod, `the workload has a pod running on ${node} (the Deployment test placed them)`)
    return pod
  }

  it('has every Node Ready: the sandbox server, tainted hybrid.dev/sandbox=true:NoSchedule, and w1, w2, w3', async () => {
    const s = scene!
    const expected = [SANDBOX_NODE, ...WORKERS].sort()
    const seen = await lastSeen(
      () => nodes(s),
      (n) => expected.every((name) => n.get(name)?.ready),
      300_000,
    )
    assert.deepEqual([...seen.keys()].sort(), expected)
    for (const name of expected) assert.equal(seen.get(name)?.ready, true, `${name} is Ready`)
    const server = seen.get(SANDBOX_NODE)!
    assert.ok(
      server.taints.includes('hybrid.dev/sandbox=true:NoSchedule'),
      `the sandbox Node is tainted: ${server.taints.join(', ')}`,
    )
    assert.equal(server.labels['hybrid.dev/sandbox'], 'true')
    for (const name of WORKERS)
      assert.ok(!seen.get(name)!.taints.some((t) => t.startsWith('hybrid.dev/sandbox')), `${name} is schedulable`)
  })

  it('runs a Deployment of 3 spread over kubernetes.io/hostname: one pod Running on each of w1, w2, w3', async () => {
    const s = scene!
    const manifest = join(s.dir, 'deployment.json')
    await writeFile(manifest, JSON.stringify(deployment(APP, image, 3)))
    await kubectl(s, ['apply', '-f', manifest])
    const seen = await lastSeen(
      workload,
      (p) => p.length === 3 && p.every((pod) => pod.running && !pod.terminating),
      480_000,
    )
    assert.equal(seen.length, 3, listing(seen))
    assert.ok(
      seen.every((pod) => pod.running && !pod.terminating),
      listing(seen),
    )
    assert.deepEqual(seen.map((pod) => pod.node).sort(), WORKERS, listing(seen))
    placed = new Map(seen.map((pod) => [pod.node, pod]))
  })

  it('carries pod-to-pod traffic across workers: the pod on w1 reaches the pod on w2 at its pod IP', async () => {
    const from = podOn('w1')
    const to = podOn('w2')
    assert.notEqual(to.ip, '', `${to.name} has a pod IP`)
    const answer = await kubectl(scene!, [
      'exec',
      from.name,
      '--',
      'curl',
      '-sS',
      '--max-time',
      '10',
      `http://${to.ip}:8080/hostname`,
    ])
    assert.equal(answer.trim(), to.name, `the pod at ${to.ip}:8080 answers with its name`)
  })

  it('lets a pod on a worker reach the API through the kubernetes Service, which leads to the advertised address', async () => {
    const s = scene!
    const service = JSON.parse(await kubectl(s, ['get', 'service', 'kubernetes', '-n', 'default', '-o', 'json']))
    const slices = JSON.parse(
      await kubectl(s, [
        'get',
        'endpointslices',
        '-n',
        'default',
        '-l',
        'kubernetes.io/service-name=kubernetes',
        '-o',
        'json',
      ]),
    ) as {items: Array<{endpoints?: Array<{addresses: string[]}>; ports?: Array<{port: number}>}>}
    const endpoints = slices.items.flatMap((slice) =>
      (slice.endpoints ?? []).flatMap((e) => e.addresses.map((a) => `${a}:${slice.ports?.[0]?.port}`)),
    )
    assert.deepEqual(endpoints, [`${ADVERTISED}:${s.apiPort}`], 'the Service leads to the tunnel’s address')
    const version = JSON.parse(await kubectl(s, ['get', '--raw', '/version'])) as {gitVersion: string}
    const [dialled, ...body] = (await kubectl(s, ['exec', podOn('w2').name, '--', 'sh', '-c', API_FROM_POD])).split(
      '\n',
    )
    assert.equal(dialled, `${service.spec.clusterIP}:${service.spec.ports[0].port}`, 'the pod dials the Service')
    assert.equal((JSON.parse(body.join('\n')) as {gitVersion: string}).gitVersion, version.gitVersion)
  })

  it('serves kubectl logs and kubectl exec for the pod on every worker, through the agents’ tunnels', async () => {
    for (const node of WORKERS) {
      const pod = podOn(node)
      const logs = await kubectl(scene!, ['logs', pod.name])
      assert.match(logs, /8080/, `${pod.name} on ${node} logs that it serves on 8080`)
      const text = `hybrid e2e ${node} ${randomBytes(6).toString('hex')}`
      assert.equal(await kubectl(scene!, ['exec', pod.name, '--', 'echo', text]), `${text}\n`)
    }
  })

  it('workers remove w3: the pod on w3 is replaced on w1 or w2, and all 3 run, none on w3', async () => {
    const s = scene!
    const moved = podOn('w3')
    const stayed = [podOn('w1').name, podOn('w2').name]
    const removed = await hybrid(s, ['workers', 'remove', 'w3', '--inventory', s.inventory], {timeoutMs: 600_000})
    assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`)
    assert.equal((await nodes(s)).has('w3'), false, 'the w3 Node is deleted')
    assert.deepEqual(await leftOn(s.lab.host('w3'), s.apiPort), [], 'nothing of k3s or hybrid is left on w3')
    const seen = await lastSeen(
      workload,
      (p) => p.length === 3 && p.every((pod) => pod.running && !pod.terminating && pod.node !== 'w3'),
      480_000,
    )
    assert.equal(seen.length, 3, `three pods, none left terminating: ${listing(seen)}`)
    assert.ok(
      seen.every((pod) => pod.running && !pod.terminating),
      listing(seen),
    )
    assert.deepEqual([...new Set(seen.map((pod) => pod.node))].sort(), ['w1', 'w2'], listing(seen))
    assert.ok(!seen.some((pod) => pod.name === moved.name), `${moved.name}, which ran on w3, is gone`)
    for (const name of stayed)
      assert.ok(
        seen.some((pod) => pod.name === name),
        `${name} kept running: ${listing(seen)}`,
      )
  })
})

/** The pods as a sentence, for assertion messages. */
function listing(seen: readonly PodSeen[]): string {
  if (seen.length === 0) return 'no pod'
  return seen
    .map((pod) => {
      const state = pod.terminating
        ? 'terminating'
        : pod.running
          ? 'running'
          : pod.unschedulable !== undefined
            ? `unschedulable (${pod.unschedulable})`
            : pod.waiting.map((w) => w.reason).join(', ') || 'not ready'
      return `${pod.name} on ${pod.node || '(no node)'}: ${state}`
    })
    .join('; ')
}
