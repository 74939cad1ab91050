import {strict as assert} from 'node:assert'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, kubectl, run, STANDIN, waitFor} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * Agent settings (spec.agent, workers[].agent), registries.yaml and image archives on two real lab hosts with
 * the k3s stand-in (a test fixture for k3s), hybrid's flannel on them: w2 has no route out (its default route
 * is deleted), so only what the archives hold runs there.
 */

const PROXY = 'http://proxy-user:proxy-secret-5f2a@10.213.250.9:3128'
const REGISTRY_PASSWORD = 'registry-secret-81c4e'
const FLANNEL = ['ghcr.io/flannel-io/flannel:v0.28.1', 'ghcr.io/flannel-io/flannel-cni-plugin:v1.9.0-flannel1']
const PAUSE = 'rancher/mirrored-pause:3.6'
const APP = 'example.com/hello:1.0'

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
  document: {spec: Record<string, any>}
}

/** A docker-save archive holding only manifest.json (the stand-in imports names; k3s would need layers too). */
async function archive(dir: string, name: string, tags: string[], gzip = false): Promise<string> {
  const src = join(dir, `${name}.d`)
  await mkdir(src, {recursive: true})
  await writeFile(join(src, 'manifest.json'), JSON.stringify([{Config: 'c.json', RepoTags: tags, Layers: []}]))
  const file = join(dir, gzip ? `${name}.tar.gz` : `${name}.tar`)
  const made = await run('tar', [gzip ? '-czf' : '-cf', file, '-C', src, 'manifest.json'])
  assert.equal(made.code, 0, made.stderr)
  return file
}

async function save(s: Scene): Promise<void> {
  await writeFile(s.inventory, JSON.stringify(s.document, null, 2))
}

/** The pid of the k3s agent under hybrid's supervisor (service: none) on a lab host. */
async function agentPid(host: LabHost): Promise<string> {
  const r = await host.exec(['sh', '-c', 'pgrep -P "$(cat /run/k3s-agent.pid)" -f "k3s agent"'])
  assert.equal(r.code, 0, `${host.name}: no agent: ${r.stderr}`)
  return r.stdout.trim()
}

/** Everything hybrid logged for the scene: its log files under the state dir. */
async function logs(dir: string): Promise<string> {
  const files = (await readdir(join(dir, 'state'), {recursive: true})).filter((f) => /log/.test(f))
  const texts = await Promise.all(files.map((f) => readFile(join(dir, 'state', f), 'utf8').catch(() => '')))
  return texts.join('\n')
}

describe('agent settings, registries.yaml and image archives on lab workers (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-agent-settings-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    const noRoute = await lab.host('w2').exec(['ip', 'route', 'del', 'default'])
    assert.equal(noRoute.code, 0, noRoute.stderr)
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: 'agents',
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: false, apiPort: await freePort()},
        network: {cni: 'flannel'},
      },
    )
    const document = JSON.parse(await readFile(inventory, 'utf8')) as Scene['document']
    await writeFile(join(dir, 'corp-ca.crt'), 'not really a certificate\n')
    document.spec.agent = {
      'kubelet-arg': ['max-pods=50'],
      environment: {HTTP_PROXY: PROXY},
      files: [{source: join(dir, 'corp-ca.crt'), destination: '/etc/hybrid-test/corp-ca.crt', mode: '0600'}],
    }
    document.spec.workers[1].agent = {'flannel-iface': 'eth0', environment: {NO_PROXY: '10.0.0.0/8'}}
    document.spec.registries = {
      mirrors: {'docker.io': {endpoint: ['https://mirror.example.com:5000']}},
      configs: {'mirror.example.com:5000': {auth: {username: 'puller', passwordEnv: 'HYBRID_TEST_REGISTRY_PASSWORD'}}},
    }
    document.spec.images = {archives: [await archive(dir, 'base', [PAUSE, ...FLANNEL])]}
    scene = {
      dir,
      lab,
      inventory,
      document,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '25', HYBRID_TEST_REGISTRY_PASSWORD: REGISTRY_PASSWORD}),
      kubeconfig: join(dir, 'state', 'clusters', 'agents', 'kubeconfig'),
    }
    await save(scene)
    const up = await hybrid(scene, ['up', '--inventory', inventory, '--detach'])
    const agentLog = (await lab.host('w1').exec(['tail', '-n', '30', '/var/lib/rancher/hybrid/k3s-agent.log'])).stdout
    assert.equal(up.code, 0, `${up.stderr}\n${agentLog}`)
    assert.ok(!`${up.stdout}${up.stderr}`.includes('secret'), 'no secret in up\u2019s output')
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it("merges each worker's agent over spec.agent into its config and env file; the environment reaches the agent, not its argv or a log; registries.yaml is 0600, its password in no log", async () => {
    const s = scene!
    const config = async (name: string) => (await s.lab.host(name).exec(['cat', '/etc/rancher/k3s/config.yaml'])).stdout
    assert.match(await config('w1'), /kubelet-arg:\n {2}- max-pods=50\n/)
    assert.doesNotMatch(await config('w1'), /flannel-iface/)
    assert.match(await config('w2'), /kubelet-arg:\n {2}- max-pods=50\n/)
    assert.match(await config('w2'), /flannel-iface: eth0\n/)
    for (const name of ['w1', 'w2']) {
      const host = s.lab.host(name)
      const pid = await agentPid(host)
      const environ = (await host.exec(['cat', `/proc/${pid}/environ`])).stdout.split('\0')
      assert.ok(environ.includes(`HTTP_PROXY=${PROXY}`), `${name}: the agent has HTTP_PROXY`)
      assert.equal(
        environ.includes('NO_PROXY=10.0.0.0/8'),
        name === 'w2',
        `${name}: NO_PROXY only where the worker set it`,
      )
      assert.ok(!(await host.exec(['cat', `/proc/${pid}/cmdline`])).stdout.includes('proxy-secret'), 'not in argv')
      const file = await host.exec(['stat', '-c', '%a %u %s', '/etc/hybrid-test/corp-ca.crt'])
      assert.equal(file.stdout.trim(), '600 0 25', `${name}: the agent's file is there`)
      const registries = await host.exec(['stat', '-c', '%a %u', '/etc/rancher/k3s/registries.yaml'])
      assert.equal(registries.stdout.trim(), '600 0')
      assert.match(
        (await host.exec(['cat', '/etc/rancher/k3s/registries.yaml'])).stdout,
        /password: registry-secret-81c4e/,
      )
    }
    const logged = await logs(s.dir)
    assert.ok(logged.length > 0, 'hybrid wrote a log')
    assert.ok(!logged.includes('proxy-secret'), 'the proxy credentials are in no log')
    assert.ok(!logged.includes(REGISTRY_PASSWORD), 'the registry password is in no log')
  })

  it('runs a pod on the worker with no route out only once an archive holds its image', async () => {
    const s = scene!
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'hello', namespace: 'default'},
      spec: {nodeName: 'w2', containers: [{name: 'hello', image: APP}]},
    }
    await writeFile(join(s.dir, 'pod.json'), JSON.stringify(pod))
    await kubectl(s, ['apply', '-f', join(s.dir, 'pod.json')])
    type PodJson = {
      status: {phase: string; containerStatuses?: {state: {waiting?: {reason: string; message?: string}}}[]}
    }
    const get = async () => JSON.parse(await kubectl(s, ['get', 'pod', 'hello', '-o', 'json'])) as PodJson
    const waiting = await waitFor('hello waiting for its image', async () => {
      const w = (await get()).status.containerStatuses?.[0]?.state.waiting
      return w && /ErrImagePull|ImagePullBackOff/.test(w.reason) ? w : undefined
    }).catch(async (error: Error) => {
      const log = (await s.lab.host('w2').exec(['tail', '-n', '15', '/var/lib/rancher/hybrid/k3s-agent.log'])).stdout
      throw new Error(`${error.message}: ${JSON.stringify((await get()).status)}\n${log}`)
    })
    assert.match(waiting.message ?? '', /example\.com\/hello:1\.0.*network is unreachable/)
    assert.equal((await get()).status.phase, 'Pending')

    s.document.spec.images.archives.push(await archive(s.dir, 'app', [APP], true))
    await save(s)
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, up.stderr)
    await waitFor('hello Running on w2', async () => ((await get()).status.phase === 'Running' ? true : undefined))
    const there = await s.lab.host('w2').exec(['ls', '/var/lib/rancher/k3s/agent/images'])
    assert.deepEqual(there.stdout.trim().split('\n'), ['app.tar.gz', 'base.tar'])
  })

  it("a change to one worker's agent settings restarts that agent only; a run with nothing changed restarts none", async () => {
    const s = scene!
    const before = {w1: await agentPid(s.lab.host('w1')), w2: await agentPid(s.lab.host('w2'))}
    const same = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(same.code, 0, same.stderr)
    assert.deepEqual({w1: await agentPid(s.lab.host('w1')), w2: await agentPid(s.lab.host('w2'))}, before)

    s.document.spec.workers[1].agent.environment = {NO_PROXY: '10.0.0.0/8,192.168.0.0/16'}
    await save(s)
    const changed = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(changed.code, 0, changed.stderr)
    assert.equal(await agentPid(s.lab.host('w1')), before.w1, 'w1 keeps its agent')
    const w2 = await agentPid(s.lab.host('w2'))
    assert.notEqual(w2, before.w2, 'w2 runs a new agent')
    const environ = (await s.lab.host('w2').exec(['cat', `/proc/${w2}/environ`])).stdout.split('\0')
    assert.ok(environ.includes('NO_PROXY=10.0.0.0/8,192.168.0.0/16'))
  })

  it('workers remove takes away the registries.yaml, files and archives hybrid put there, and nothing else', async () => {
    const s = scene!
    const w2 = s.lab.host('w2')
    assert.equal((await w2.exec(['sh', '-c', 'echo mine > /etc/rancher/k3s/admin-note'])).code, 0)
    const removed = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', s.inventory])
    assert.equal(removed.code, 0, removed.stderr)
    for (const path of ['/etc/rancher/k3s/registries.yaml', '/etc/hybrid-test/corp-ca.crt', '/var/lib/rancher/k3s'])
      assert.notEqual((await w2.exec(['test', '-e', path])).code, 0, `${path} is gone`)
    assert.equal((await w2.exec(['cat', '/etc/rancher/k3s/admin-note'])).stdout, 'mine\n', "the admin's file stays")
  })
})
