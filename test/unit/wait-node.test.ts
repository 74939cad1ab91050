import {strict as assert} from 'node:assert'

import {CoreV1Api} from '@kubernetes/client-node'

import type {HostHandle} from '../../src/plan/index.js'
import type {JoinTarget} from '../../src/phases/join/join-target.js'
import {WORKER_LABEL} from '../../src/kube/worker-node.js'
import {waitNodeReady} from '../../src/phases/join/wait-node.js'
import {startStandinServer, type StandinServer} from '../helpers/standin-server.js'
import {useTempStateDir} from '../helpers/state-dir.js'

/**
 * The join's last step against the k3s stand-in's API (a test fixture for k3s): a worker's Node that
 * registered NotReady because its runtime has no CNI config, in the kubelet's words. hybrid applies the
 * workers' CNI before the join, so it waits for Ready; only when the cluster brings its own CNI
 * (spec.network.cni: none), which can go on only once the cluster is up, is that Node joined as it is.
 */
const NO_CNI =
  'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized'

describe('the join waiting for a Node without a CNI config', function () {
  this.timeout(60_000)
  useTempStateDir('hybrid-wait-node-')
  let server: StandinServer | undefined
  const warnings: string[] = []

  before(async () => {
    server = await startStandinServer(['--disable-agent'])
    await server.kc.makeApiClient(CoreV1Api).createNode({
      body: {
        // The worker's own Node: it carries hybrid's label for this cluster (c).
        metadata: {name: 'w1', labels: {[WORKER_LABEL]: 'c'}},
        status: {conditions: [{type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: NO_CNI}]},
      },
    })
  })
  after(async () => server?.stop())

  function attempt(cni: 'none' | 'auto') {
    const target = {
      run: {
        ctx: {dryRun: false},
        cluster: 'c',
        inventory: {network: {cni}},
        kube: () => server!.kc,
        timeouts: {nodeReadyMs: 3000, tunnelMs: 1000},
      },
      worker: {name: 'w1', labels: {}},
    } as unknown as JoinTarget
    const handle = {
      signal: new AbortController().signal,
      logger: {warn: (_fields: unknown, message: string) => warnings.push(message)},
    } as unknown as HostHandle
    return waitNodeReady.run(target, handle)
  }

  it('waits for Ready, and says what did not happen, when hybrid brings the CNI', async () => {
    await assert.rejects(attempt('auto'), {
      code: 'TIMEOUT',
      message: 'Node w1 becoming Ready did not happen within 3 s',
    })
  })

  it('joins the Node as it is, with a warning, when the cluster brings its own CNI (spec.network.cni: none)', async () => {
    await attempt('none')
    assert.deepEqual(warnings, [
      "Node w1 registered and stays NotReady until the cluster's own CNI is installed (spec.network.cni: none)",
    ])
  })
})
