import {strict as assert} from 'node:assert'

import {compareK3sVersions} from '../../src/k3s/versions.js'

describe('k3s release order (the downgrade check of upgrades)', () => {
  it('orders by Kubernetes version, a release candidate before its release, then k3s build', () => {
    const sign = (a: string, b: string) => Math.sign(compareK3sVersions(a, b) ?? NaN)
    assert.equal(sign('v1.34.1+k3s1', 'v1.34.2+k3s1'), -1)
    assert.equal(sign('v1.35.0+k3s1', 'v1.34.9+k3s3'), 1)
    assert.equal(sign('v1.34.1-rc1+k3s1', 'v1.34.1+k3s1'), -1)
    assert.equal(sign('v1.34.1-rc2+k3s1', 'v1.34.1-rc1+k3s1'), 1)
    assert.equal(sign('v1.34.1+k3s2', 'v1.34.1+k3s1'), 1)
    assert.equal(sign('v1.34.1+k3s1', 'v1.34.1+k3s1'), 0)
    assert.equal(compareK3sVersions('latest', 'v1.34.1+k3s1'), undefined)
  })
})
