import {strict as assert} from 'node:assert'
import {access, constants} from 'node:fs/promises'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool, skipUnless} from '../helpers/requires.js'
import {assertNothingLeft, runScenario} from '../sandbox/cluster-in-gvisor.js'
import {type ClusterFixture, cleanupFixture, makeFixture} from '../system/cluster-fixture.js'

/**
 * The e2e tier: the same control-plane scenario as test/sandbox, with a real k3s binary instead of the
 * stand-in. The release cannot be downloaded on the project's build machines, so it runs only when
 * HYBRID_K3S_BINARY names one, and says why it skips otherwise. This is the only tier that proves the
 * workarounds against the real kubelet, containerd and apiserver.
 */
const binary = process.env.HYBRID_K3S_BINARY

describe('e2e: a real k3s control plane in gVisor', function () {
  this.timeout(900_000)
  let fixture: ClusterFixture | undefined

  before(async function () {
    skipUnless(
      this,
      Boolean(binary),
      'HYBRID_K3S_BINARY is not set: no real k3s binary on this machine (the release cannot be downloaded here); set it to run the e2e tier',
    )
    await access(binary!, constants.X_OK).catch(() =>
      assert.fail(`HYBRID_K3S_BINARY=${binary} is not an executable file`),
    )
    requireGvisor(this)
    requireTool(this, 'kubectl', 'kubernetes-client')
  })
  afterEach(async () => {
    await cleanupFixture(fixture)
    fixture = undefined
  })

  it('reaches Ready with workarounds: auto, the sandbox Node tainted, and down leaves nothing', async () => {
    fixture = await makeFixture({agent: true, workarounds: 'auto', binary: () => binary!})
    const seen = await runScenario(fixture, 840_000)
    assert.equal(seen.upCode, 0, seen.upErr)
    const nodes = JSON.parse(await seen.file('nodes.json'))
    const node = nodes.items.find((n: {metadata: {name: string}}) => n.metadata.name === `${fixture!.name}-server`)
    assert.ok(node, `the sandbox Node is registered: ${await seen.file('kubectl.err')}`)
    assert.equal(node.status.conditions.find((c: {type: string}) => c.type === 'Ready').status, 'True')
    assert.ok(
      node.spec.taints.some(
        (t: {key: string; effect: string}) => t.key === 'hybrid.dev/sandbox' && t.effect === 'NoSchedule',
      ),
    )
    const status = JSON.parse(await seen.file('status.json'))
    assert.ok(
      Object.keys(status.interceptor?.rewrites ?? {}).some((path) => path.startsWith('/proc/sys/')),
      "the real kubelet's /proc/sys accesses were redirected",
    )
    assert.equal(seen.downCode, 0, await seen.file('down.err'))
    await assertNothingLeft(fixture, seen)
  })
})
