import {strict as assert} from 'node:assert'

import type {Inventory, WorkerSpec} from '../../src/inventory/model.js'
import {K3sDistribution, peerGroup} from '../../src/phases/join/distribute-k3s.js'
import {changedSettings, controlPlaneSettings} from '../../src/state/settings.js'

/** spec.k3s.distribute's groups and plan sentences (docs/architecture.md, "Distributing the k3s binary"). */

function worker(name: string, address: string, extra: Partial<WorkerSpec> = {}): WorkerSpec {
  return {name, address, ssh: {}, labels: {}, taints: [], hostKey: null, service: 'auto', ...extra} as WorkerSpec
}

const K3S = {version: 'v1.34.1+k3s1', mirror: null}

describe('distributing the k3s binary: groups', () => {
  it('groups by workers[].group, else by the /24 of the IPv4 internal address or address; a DNS name is alone', () => {
    assert.equal(peerGroup(worker('a', '10.0.1.7')), '10.0.1.0/24')
    assert.equal(peerGroup(worker('b', '192.0.2.1', {internalAddress: '10.0.1.9'})), '10.0.1.0/24')
    assert.equal(peerGroup(worker('c', '10.0.1.7', {group: 'rack1'})), 'group rack1')
    assert.equal(peerGroup(worker('d', 'node.example.com')), undefined)
    assert.equal(peerGroup(worker('e', 'fd00::1')), undefined)
  })

  it('the first worker of a group serves the others; a group of one, or another mode, has no peers', () => {
    const workers = [
      worker('a', '10.0.1.7'),
      worker('b', '10.0.2.7'),
      worker('c', '10.0.1.8'),
      worker('d', '10.0.1.9'),
      worker('e', 'node.example.com'),
    ]
    const peers = new K3sDistribution('peers', K3S, workers)
    assert.deepEqual(
      workers.map((w) => peers.peerOf(w.name)),
      [undefined, undefined, 'a', 'a', undefined],
    )
    assert.equal(
      peers.plan(workers[0], 'k3s X', 'amd64'),
      'upload k3s X to /usr/local/bin/k3s (0755), and serve it to 2 peer(s) of 10.0.1.0/24',
    )
    assert.equal(
      peers.plan(workers[2], 'k3s X', 'amd64'),
      'fetch k3s X from peer a into /usr/local/bin/k3s (else upload k3s X to /usr/local/bin/k3s (0755))',
    )
    assert.equal(peers.plan(workers[1], 'k3s X', 'amd64'), 'upload k3s X to /usr/local/bin/k3s (0755)')
    const coordinator = new K3sDistribution('coordinator', K3S, workers)
    assert.equal(coordinator.peerOf('c'), undefined)
  })

  it('worker-download names the release URL of the version and architecture', () => {
    const download = new K3sDistribution('worker-download', K3S, [worker('a', '10.0.1.7')])
    assert.match(
      download.plan(worker('a', '10.0.1.7'), 'k3s X', 'arm64'),
      /^download k3s X on the worker from https:\/\/github\.com\/k3s-io\/k3s\/releases\/download\/v1\.34\.1%2Bk3s1\/k3s-arm64 into /,
    )
  })

  it('a changed distribute is no change of the control plane’s settings (a running cluster takes it at the next join)', () => {
    const inventory = (distribute: 'coordinator' | 'peers') =>
      ({
        name: 'c',
        k3s: {...K3S, image: 'i', distribute},
        token: {},
        controlPlane: {},
        network: {},
      }) as unknown as Inventory
    const before = controlPlaneSettings(inventory('coordinator')) as unknown as Record<string, unknown>
    const after = controlPlaneSettings(inventory('peers')) as unknown as Record<string, unknown>
    assert.deepEqual(changedSettings(before, after), [])
  })
})
