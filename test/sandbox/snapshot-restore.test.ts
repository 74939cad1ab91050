import {strict as assert} from 'node:assert'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {seal} from '../../src/snapshot/sealed.js'
import {requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {ADVERTISED, agentPid} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {lastJson} from '../workers/scene.js'
import {fixtureEnv, freePort, REPO, RUN_JS, STANDIN} from '../system/cluster-fixture.js'

/**
 * The cluster outlives its sandbox: `hybrid up` in real gVisor (runsc, a namespace that drops inbound
 * connections) with three lab workers and the k3s stand-in (whose server keeps kine's sqlite), objects
 * created, a snapshot taken onto two workers; then every process of that sandbox SIGKILLed and its data
 * dir and state removed. A second sandbox's `up` finds the snapshots on the workers, refuses a damaged one
 * and another cluster's (both newer), restores the real one, and the workers' agents, never restarted,
 * come back Ready. Another token is refused with nothing changed.
 */
const CLUSTER = 'phoenix'

/** A namespace, a ConfigMap and a Deployment, applied as JSON (the stand-in speaks no protobuf). */
const OBJECTS = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    {apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'keep-me'}},
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'kept', namespace: 'keep-me'}, data: {colour: 'blue'}},
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'web', namespace: 'keep-me'},
      spec: {
        replicas: 1,
        selector: {matchLabels: {app: 'web'}},
        template: {
          metadata: {labels: {app: 'web'}},
          spec: {containers: [{name: 'web', image: 'registry.example/web:1'}]},
        },
      },
    },
  ],
}

interface Seen {
  code: (name: string) => Promise<number>
  file: (name: string) => Promise<string>
}

function sandboxScript(out: string, lines: string[]): string {
  return ['#!/bin/sh', `out=${JSON.stringify(out)}`, `H="${process.execPath} ${RUN_JS}"`, ...lines, ''].join('\n')
}

async function inSandbox(
  dir: string,
  name: string,
  lines: string[],
  netns: string,
  env: NodeJS.ProcessEnv,
): Promise<Seen> {
  const out = join(dir, `out-${name}`)
  await mkdir(out)
  await mkdir(join(dir, 'tmp'), {recursive: true})
  await chmod(dir, 0o755)
  const file = join(dir, `${name}.sh`)
  await writeFile(file, sandboxScript(out, lines), {mode: 0o755})
  const result = await runInGvisor(['sh', file], {
    network: {netns, loopbackAddress: ADVERTISED},
    cwd: REPO,
    env: {...env, TMPDIR: join(dir, 'tmp')},
    timeoutMs: 300_000,
  })
  assert.ok(result.code === 0 || result.signal === null, `runsc: ${result.stderr}`)
  const read = (n: string) => readFile(join(out, n), 'utf8').catch(() => '')
  return {file: read, code: async (n) => Number((await read(n)).trim())}
}

describe('the cluster outlives its sandbox: a snapshot on the workers restored by a new gVisor sandbox (stand-in k3s, three lab workers)', function () {
  this.timeout(900_000)
  let lab: Lab | undefined
  let dir = ''
  let first: Seen
  let second: Seen
  const was = {pids: new Map<string, number | undefined>(), binaries: new Map<string, string>(), caHash: ''}
  let snapshotId = ''
  const workerFiles = new Map<string, string>()

  const kubeconfig = () => join(dir, 'state', 'clusters', CLUSTER, 'kubeconfig')
  const kubectl = (args: string) => `kubectl --kubeconfig ${JSON.stringify(kubeconfig())} ${args}`
  const binaryOf = async (name: string) =>
    (await lab!.host(name).exec(['stat', '-c', '%i %Y', '/usr/local/bin/k3s'])).stdout.trim()
  const snapshotsOn = async (name: string) =>
    (await lab!.host(name).exec(['sh', '-c', `cd /var/lib/rancher/hybrid/snapshots/${CLUSTER} && sha256sum *`])).stdout

  before(async function () {
    requireGvisor(this)
    requireLab(this)
    requireTool(this, 'kubectl', 'kubernetes-client')
    lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}, {name: 'w3'}]})
    const netns = await lab.coordinator()
    dir = await mkdtemp(join(tmpdir(), 'hybrid-restore-'))
    const apiPort = await freePort()
    const options = {
      name: CLUSTER,
      k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
      controlPlane: {agent: true, workarounds: 'auto', apiPort, snapshots: {to: ['w1', 'w2'], every: '10m', keep: 3}},
    }
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      options,
    )
    const env = fixtureEnv(dir)
    const objects = join(dir, 'objects.json')
    await writeFile(objects, JSON.stringify(OBJECTS))

    // 1. up, objects, a snapshot; then every process of the sandbox SIGKILLed (the sandbox dies)
    first = await inSandbox(
      dir,
      'first',
      [
        `$H up --inventory ${inventory} --detach >"$out/up.out" 2>"$out/up.err"; echo $? >"$out/up.code"`,
        `${kubectl(`apply -f ${JSON.stringify(objects)}`)} >"$out/objects.out" 2>&1; echo $? >"$out/objects.code"`,
        `$H snapshot save --inventory ${inventory} --json >"$out/save.json" 2>"$out/save.err"; echo $? >"$out/save.code"`,
        `${kubectl('get nodes -o json')} >"$out/nodes.json" 2>&1`,
        'kill -KILL -1; sleep 1',
      ],
      netns,
      env,
    )
    snapshotId = (lastJson(await first.file('save.json')) as {manifest: {id: string}}).manifest.id
    for (const host of lab.hosts) {
      was.pids.set(host.name, await agentPid(host))
      was.binaries.set(host.name, await binaryOf(host.name))
    }
    was.caHash = (await readFile(join(dir, 'data', 'server', 'token'), 'utf8')).slice(3, 67)
    await rm(join(dir, 'data'), {recursive: true, force: true})
    await rm(join(dir, 'state'), {recursive: true, force: true})

    // Newer than the real one: a damaged copy on w1, another cluster's snapshot on w2 (same token).
    const real = await readFile(
      lab.host('w1').pathOnMachine(`/var/lib/rancher/hybrid/snapshots/${CLUSTER}/${snapshotId}.snapshot`),
    )
    const damaged = Buffer.from(real)
    damaged[damaged.length - 100] ^= 0x40
    await writeFile(
      lab.host('w1').pathOnMachine(`/var/lib/rancher/hybrid/snapshots/${CLUSTER}/20991231T000000Z-aaaaaa.snapshot`),
      damaged,
      {mode: 0o600},
    )
    const token = (await readFile(join(dir, 'token'), 'utf8')).trim()
    const other = await seal(Buffer.from('not ours'), token, {
      id: '20991230T000000Z-bbbbbb',
      cluster: 'other',
      k3sVersion: 'v1.34.1+k3s1',
      createdAt: new Date().toISOString(),
    })
    await writeFile(
      lab.host('w2').pathOnMachine(`/var/lib/rancher/hybrid/snapshots/${CLUSTER}/20991230T000000Z-bbbbbb.snapshot`),
      other.bytes,
      {mode: 0o600},
    )
    for (const name of ['w1', 'w2']) workerFiles.set(name, await snapshotsOn(name))

    // 3. a new sandbox, no data dir, no state: up restores; then another token is refused
    const wrongDir = join(dir, 'wrong')
    await mkdir(wrongDir)
    await writeFile(join(wrongDir, 'token'), 'another-token\n', {mode: 0o600})
    const wrong = await writeLabInventory(
      wrongDir,
      lab,
      lab.hosts.map((host) => ({host})),
      options,
    )
    second = await inSandbox(
      dir,
      'second',
      [
        `$H up --inventory ${inventory} --detach --json >"$out/up.out" 2>"$out/up.err"; echo $? >"$out/up.code"`,
        `for i in $(seq 60); do ${kubectl('get nodes -o json')} >"$out/nodes.json" 2>&1; [ "$(grep -c '"reason": "KubeletReady"' "$out/nodes.json")" -ge 4 ] && break; sleep 1; done`,
        `${kubectl('-n keep-me get configmap kept -o jsonpath={.data.colour}')} >"$out/cm.txt" 2>&1`,
        `${kubectl('-n keep-me get deployment web -o jsonpath={.spec.template.spec.containers[0].image}')} >"$out/deploy.txt" 2>&1`,
        `$H status --json >"$out/status.json" 2>"$out/status.err"`,
        `HYBRID_STATE_DIR=${join(wrongDir, 'state')} $H up --inventory ${wrong} --restore-from w1:${snapshotId} >"$out/wrong.out" 2>"$out/wrong.err"; echo $? >"$out/wrong.code"`,
        `$H down >"$out/down.out" 2>"$out/down.err"; echo $? >"$out/down.code"`,
      ],
      netns,
      env,
    )
  })

  after(async () => {
    await lab?.destroy()
    if (dir && !process.env.HYBRID_KEEP_SCENE) await rm(dir, {recursive: true, force: true})
  })

  it('the first sandbox: up, three objects and a snapshot stored on w1 and w2, read back', async () => {
    assert.equal(await first.code('up.code'), 0, await first.file('up.err'))
    assert.equal(await first.code('objects.code'), 0, await first.file('objects.out'))
    assert.equal(await first.code('save.code'), 0, await first.file('save.err'))
    const saved = lastJson(await first.file('save.json')) as {copies: Array<{worker: string; sha256?: string}>}
    assert.deepEqual(
      saved.copies.map((c) => `${c.worker}:${Boolean(c.sha256)}`),
      ['w1:true', 'w2:true'],
    )
    assert.ok(was.caHash.match(/^[0-9a-f]{64}$/), 'the join token names the CA hash')
  })

  it('the new sandbox restores the newest snapshot that verifies, refusing a damaged one and another cluster’s', async () => {
    assert.equal(await second.code('up.code'), 0, await second.file('up.err'))
    const log = (await second.file('up.out')) + (await second.file('up.err'))
    assert.match(log, /20991231T000000Z-aaaaaa on w1 cannot be decrypted/)
    assert.match(log, /20991230T000000Z-bbbbbb on w2 is a snapshot of cluster other, not of phoenix/)
    assert.equal((await second.file('cm.txt')).trim(), 'blue')
    assert.equal((await second.file('deploy.txt')).trim(), 'registry.example/web:1')
    const token = await readFile(join(dir, 'data', 'server', 'token'), 'utf8').catch(() => '')
    assert.equal(token.slice(3, 67), was.caHash, 'the join token’s CA hash is the same')
  })

  it('the three workers’ Nodes are Ready under the same names, their agents neither restarted nor uploaded again', async () => {
    const nodes = JSON.parse(await second.file('nodes.json')) as {
      items: Array<{metadata: {name: string}; status: {conditions: Array<{type: string; status: string}>}}>
    }
    const ready = nodes.items
      .filter((n) => n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'))
      .map((n) => n.metadata.name)
      .sort()
    assert.deepEqual(ready, ['phoenix-server', 'w1', 'w2', 'w3'])
    for (const host of lab!.hosts) {
      assert.equal(await agentPid(host), was.pids.get(host.name), `${host.name}: the same agent process`)
      assert.ok(was.pids.get(host.name), `${host.name} had an agent`)
      assert.equal(await binaryOf(host.name), was.binaries.get(host.name), `${host.name}: k3s not uploaded again`)
    }
  })

  it('another token is refused in one sentence, and nothing changes on the workers', async () => {
    assert.equal(await second.code('wrong.code'), 1, await second.file('wrong.out'))
    assert.match(await second.file('wrong.err'), /snapshot \S+ on w1 cannot be decrypted with this cluster's token/)
    assert.equal(
      await readFile(join(dir, 'wrong', 'data', 'server', 'db', 'state.db')).catch(() => 'absent'),
      'absent',
      'nothing was restored',
    )
    const status = lastJson(await second.file('status.json')) as {
      lastSnapshot?: unknown
      workers: Array<{name: string; status: string}>
    }
    assert.deepEqual(
      status.workers.map((w) => `${w.name}:${w.status}`),
      ['w1:joined', 'w2:joined', 'w3:joined'],
    )
  })

  it('down in the new sandbox takes a last snapshot; the refused files are left as they were', async () => {
    assert.equal(await second.code('down.code'), 0, await second.file('down.err'))
    for (const name of ['w1', 'w2']) {
      const now = await snapshotsOn(name)
      const refused = workerFiles
        .get(name)!
        .split('\n')
        .filter((line) => line.includes('2099'))
      assert.equal(refused.length, 1, `${name} had one planted file`)
      assert.ok(now.includes(refused[0]), `${name}: ${refused[0]} left as it was`)
      assert.equal(now.trim().split('\n').length, 3, `${name} keeps 3 (keep: 3): ${now}`)
    }
  })
})
