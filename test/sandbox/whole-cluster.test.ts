import {strict as assert} from 'node:assert'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {requireGvisor} from '../helpers/gvisor.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {ADVERTISED, leftOn} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, STANDIN} from '../system/cluster-fixture.js'
import {assertNothingLeft, type Observations, runScenario, type Scenario} from './cluster-in-gvisor.js'

/**
 * The whole cluster as a user in a restricted sandbox brings it up: `hybrid up` inside real gVisor (runsc,
 * 9p root) whose network namespace drops every inbound connection, three lab workers with real sshd
 * joined in tunnel mode, the k3s stand-in (named as such: the release cannot be downloaded here). Then
 * `hybrid down --uninstall-workers` in the same sandbox, and nothing of hybrid is left on any host.
 */
describe('the whole cluster from inside gVisor that takes no inbound connections (stand-in k3s, three lab workers)', function () {
  this.timeout(600_000)
  let lab: Lab | undefined
  let scene: (Scenario & {apiPort: number}) | undefined
  let seen: Observations | undefined

  before(async function () {
    requireGvisor(this)
    requireLab(this)
    requireTool(this, 'kubectl', 'kubernetes-client')
    requireTool(this, 'curl')
    lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}, {name: 'w3'}]})
    const netns = await lab.coordinator()
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-whole-'))
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: 'whole',
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: true, workarounds: 'auto', apiPort},
      },
    )
    const stateDir = join(dir, 'state')
    scene = {dir, name: 'whole', stateDir, inventory, apiPort, env: fixtureEnv(dir)}
    seen = await runScenario(scene, 480_000, {netns, loopbackAddress: ADVERTISED}, ['--uninstall-workers'])
  })

  after(async () => {
    await lab?.destroy()
    if (scene) await rm(scene.dir, {recursive: true, force: true})
  })

  it('the coordinator’s namespace drops inbound connections: a worker’s connect to it times out', async () => {
    const coordinator = lab!.subnet.replace(/\.0\/24$/, '.5')
    const dial = await lab!.host('w1').exec(['curl', '-s', '--connect-timeout', '2', `http://${coordinator}:22/`])
    assert.equal(dial.code, 28, `a dropped SYN times out (curl 28), a refused one would be 7: ${dial.stderr}`)
  })

  it('up exits 0; kubectl in the sandbox lists four Ready nodes, the sandbox’s own tainted hybrid.dev/sandbox', async () => {
    assert.equal(seen!.upCode, 0, `${seen!.upOut}\n${seen!.upErr}`)
    assert.match(seen!.upOut, /k3s version v1\.34\.1\+k3s1 \(stand-in\)/, 'the summary names the k3s that ran')
    const nodes = JSON.parse(await seen!.file('nodes.json')) as {
      items: Array<{
        metadata: {name: string}
        spec: {taints?: Array<{key: string; effect: string}>}
        status: {conditions: Array<{type: string; status: string}>}
      }>
    }
    const ready = (n: (typeof nodes.items)[number]) =>
      n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True')
    assert.deepEqual(
      nodes.items.map((n) => `${n.metadata.name}:${ready(n) ? 'Ready' : 'NotReady'}`).sort(),
      ['w1:Ready', 'w2:Ready', 'w3:Ready', 'whole-server:Ready'],
      await seen!.file('kubectl.err'),
    )
    const server = nodes.items.find((n) => n.metadata.name === 'whole-server')!
    assert.deepEqual(
      (server.spec.taints ?? []).map((t) => `${t.key}:${t.effect}`),
      ['hybrid.dev/sandbox:NoSchedule'],
    )
  })

  it('status in the sandbox shows the interceptor’s /proc/sys rewrites, every worker’s tunnel up and its agent running', async () => {
    const status = JSON.parse(await seen!.file('status.json')) as {
      interceptor: {rewrites?: Record<string, number>} | null
      workers: Array<{name: string; status: string; tunnel: {state: string} | null; agent: {state: string} | null}>
    }
    assert.ok(
      Object.keys(status.interceptor?.rewrites ?? {}).some((path) => path.startsWith('/proc/sys/')),
      `the kubelet's /proc/sys accesses were redirected: ${JSON.stringify(status.interceptor)}`,
    )
    assert.deepEqual(
      status.workers.map((w) => `${w.name}:${w.status}:tunnel ${w.tunnel?.state}:agent ${w.agent?.state}`),
      ['w1:joined:tunnel up:agent running', 'w2:joined:tunnel up:agent running', 'w3:joined:tunnel up:agent running'],
    )
  })

  it('down --uninstall-workers exits 0 and leaves nothing of hybrid on any host, nor in the sandbox', async () => {
    assert.equal(seen!.downCode, 0, await seen!.file('down.err'))
    for (const host of lab!.hosts)
      assert.deepEqual(await leftOn(host, scene!.apiPort), [], `nothing left on ${host.name}`)
    await assertNothingLeft(scene!, seen!, ['w1', 'w2', 'w3'])
  })
})
