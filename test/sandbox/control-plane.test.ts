import {strict as assert} from 'node:assert'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool} from '../helpers/requires.js'
import {type ClusterFixture, cleanupFixture, makeFixture} from '../system/cluster-fixture.js'
import {assertNothingLeft, runScenario} from './cluster-in-gvisor.js'

describe('the control plane in gVisor (stand-in k3s)', function () {
  this.timeout(300_000)
  let fixture: ClusterFixture | undefined

  before(function () {
    requireGvisor(this)
    requireTool(this, 'kubectl', 'kubernetes-client')
  })
  afterEach(async () => {
    await cleanupFixture(fixture)
    fixture = undefined
  })

  it('reaches Ready with workarounds: auto; the sandbox Node is tainted; /proc/sys paths are rewritten; down leaves nothing', async () => {
    fixture = await makeFixture({agent: true, workarounds: 'auto'})
    const seen = await runScenario(fixture)
    assert.equal(seen.upCode, 0, seen.upErr)
    assert.match(seen.upOut, /cluster lab is up/)

    // This sandbox shares the host's network stack (runsc --network=host), which refuses new addresses:
    // up says in one warning what that costs (the server's own agent logs remotedialer errors; k3s dials
    // its own kubelet directly, so logs and exec are not affected), and goes on.
    assert.match(seen.upErr, /cannot put 100\.64\.255\.1 on this sandbox's loopback device/)
    assert.match(seen.upErr, /will keep logging remotedialer errors in k3s\.log/)
    assert.doesNotMatch(seen.upErr, /will fail/)
    const serverLog = await readFile(join(fixture.stateDir, 'clusters', fixture.name, 'k3s.log'), 'utf8')
    assert.match(serverLog, /Remotedialer proxy error; reconnecting/, 'the errors the warning announces are in k3s.log')

    const nodes = JSON.parse(await seen.file('nodes.json'))
    assert.equal(nodes.items.length, 1, await seen.file('kubectl.err'))
    const node = nodes.items[0]
    assert.equal(node.metadata.name, 'lab-server')
    assert.equal(node.metadata.labels['hybrid.dev/sandbox'], 'true')
    assert.deepEqual(
      node.spec.taints
        .filter((t: {key: string}) => t.key === 'hybrid.dev/sandbox')
        .map((t: {key: string; value: string; effect: string}) => `${t.key}=${t.value}:${t.effect}`),
      ['hybrid.dev/sandbox=true:NoSchedule'],
    )
    assert.equal(node.status.conditions.find((c: {type: string}) => c.type === 'Ready').status, 'True')

    const status = JSON.parse(await seen.file('status.json'))
    assert.equal(status.up, true)
    assert.equal(status.phase, 'ready')
    // The sandbox kubelet's CNI config is loopback only (flannel-backend none): status says what that means.
    assert.deepEqual(status.sandboxNode, {name: 'lab-server', hostNetworkOnly: true})
    assert.ok(
      status.workarounds.includes('procsys') && status.workarounds.includes('kmsg'),
      `applied: ${status.workarounds}`,
    )
    const rewritten = Object.keys(status.interceptor?.rewrites ?? {}).filter((path) => path.startsWith('/proc/sys/'))
    assert.ok(
      rewritten.length > 0,
      `status --json shows rewritten /proc/sys paths: ${JSON.stringify(status.interceptor)}`,
    )
    assert.match(await seen.file('mounts-up.txt'), / \/dev\/kmsg /, 'while up, /dev/null is bind-mounted on /dev/kmsg')

    assert.equal(seen.downCode, 0, await seen.file('down.err'))
    await assertNothingLeft(fixture, seen)
  })

  it('in a sandbox with a network stack of its own: the advertised address answers on its loopback, so the server’s agent leaves its local tunnel; down takes it off', async () => {
    fixture = await makeFixture({agent: true})
    const seen = await runScenario(fixture, 240_000, 'none')
    assert.equal(seen.upCode, 0, seen.upErr)
    assert.doesNotMatch(seen.upErr, /cannot put 100\.64\.255\.1/)
    assert.match(await seen.file('lo-up.txt'), /inet 100\.64\.255\.1\/32/)
    const k3sLog = await readFile(join(fixture.stateDir, 'clusters', fixture.name, 'k3s.log'), 'utf8')
    assert.match(k3sLog, /Stopped tunnel to 127\.0\.0\.1:/, 'the agent reached the API at the advertised address')
    assert.equal(seen.downCode, 0, await seen.file('down.err'))
    assert.doesNotMatch(await seen.file('lo-down.txt'), /100\.64\.255\.1/)
    await assertNothingLeft(fixture, seen)
  })

  it("fails with workarounds: none, naming the missing workaround with the stand-in's own message, and leaves nothing", async () => {
    fixture = await makeFixture({agent: true, workarounds: 'none'})
    const seen = await runScenario(fixture)
    assert.equal(seen.upCode, 1)
    const sentence = seen.upErr.split('\n').find((l) => l.startsWith('hybrid: ')) ?? seen.upErr
    assert.match(
      sentence,
      /^hybrid: k3s server exited with code 1 before becoming ready: Failed to start ContainerManager: .*open \/proc\/sys\/vm\/panic_on_oom: no such file or directory/,
    )
    assert.match(
      sentence,
      /the procsys workaround removes this blocker, but spec\.controlPlane\.workarounds is none \(auto, all, or a list that includes procsys applies it\)$/,
    )
    assert.match(
      seen.upErr,
      /level=fatal msg="Failed to start ContainerManager"/,
      "k3s's last lines follow the sentence",
    )
    await assertNothingLeft(fixture, seen)
  })
})
