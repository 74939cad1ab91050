import {strict as assert} from 'node:assert'

import {workerRows} from '../../src/actions/workers.js'
import type {WorkerSpec} from '../../src/inventory/model.js'
import type {NodeSummary} from '../../src/kube/nodes.js'
import {isWorkersNode, notTheWorkersNode, WORKER_LABEL, workerNodeIdentity} from '../../src/kube/worker-node.js'
import {renderWorkerRows} from '../../src/ui/workers.js'

const node = (over: Partial<NodeSummary> = {}): NodeSummary => ({
  name: 'w1',
  ready: true,
  reason: '',
  taints: [],
  labels: {},
  version: 'v1.34.1+k3s1',
  internalIPs: ['192.168.1.5'],
  ...over,
})

const worker = {name: 'w1', address: '203.0.113.9', internalAddress: undefined} as Pick<
  WorkerSpec,
  'name' | 'address' | 'internalAddress'
>

describe("a worker's Node: its name and hybrid's mark", () => {
  const id = workerNodeIdentity('lab', worker)

  it("is the worker's with hybrid's label for this cluster, or with the worker's address as InternalIP", () => {
    assert.equal(isWorkersNode(node({labels: {[WORKER_LABEL]: 'lab'}}), id), true)
    assert.equal(isWorkersNode(node({internalIPs: ['203.0.113.9']}), id), true, 'joined before the label existed')
    const internal = workerNodeIdentity('lab', {...worker, internalAddress: '10.0.0.7'})
    assert.equal(isWorkersNode(node({internalIPs: ['10.0.0.7']}), internal), true)
  })

  it("is not the worker's by name alone, nor with another cluster's label, nor under another name", () => {
    assert.equal(isWorkersNode(node(), id), false)
    assert.equal(isWorkersNode(node({labels: {[WORKER_LABEL]: 'other'}}), id), false)
    assert.equal(isWorkersNode(node({name: 'w2', labels: {[WORKER_LABEL]: 'lab'}}), id), false)
    // The sandbox's own Node: named <cluster>-server, marked as the sandbox, its InternalIP the sandbox's.
    const sandbox = node({name: 'lab-server', labels: {'hybrid.dev/sandbox': 'true'}, internalIPs: ['10.1.0.2']})
    assert.equal(isWorkersNode(sandbox, workerNodeIdentity('lab', {...worker, name: 'lab-server'})), false)
  })

  it('says in one sentence why a Node of the name is not the worker’s', () => {
    assert.equal(
      notTheWorkersNode(node(), id),
      "a Node named w1 exists that is not this worker: it lacks hybrid's label hybrid.dev/worker=lab and has InternalIP 192.168.1.5, not the worker's address",
    )
  })

  it('status and workers list show such a Node as another’s, and the worker as not joined', () => {
    const rows = workerRows('lab', {workers: [worker as WorkerSpec]}, [], [node()], [])
    assert.equal(rows[0].status, 'missing')
    assert.deepEqual(rows[0].node, {ready: true, reason: '', version: 'v1.34.1+k3s1', ours: false})
    assert.match(renderWorkerRows(rows, true), /^w1 +203\.0\.113\.9 +missing +another's Node of this name/m)
    const marked = workerRows(
      'lab',
      {workers: [worker as WorkerSpec]},
      [],
      [node({labels: {[WORKER_LABEL]: 'lab'}})],
      [],
    )
    assert.equal(marked[0].node?.ours, true)
  })
})
