import assert from 'node:assert/strict'

import {normalizeSha256} from '../../src/k3s/digest.js'
import {HybridError} from '../../src/errors.js'
import {imageTag, parseImageRef} from '../../src/k3s/image-ref.js'
import {parseChallenge} from '../../src/k3s/registry-client.js'
import {assetName, releaseUrls, sumFor} from '../../src/k3s/release-download.js'

/** Where the k3s binary is looked for: release URLs, sums files, image references, registry challenges. */
describe('k3s binary: names and addresses', function () {
  it('release URLs: GitHub by default, a mirror instead, + as %2B', function () {
    assert.deepEqual(releaseUrls('v1.34.1+k3s1', 'amd64'), {
      asset: 'https://github.com/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1/k3s',
      sums: 'https://github.com/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1/sha256sum-amd64.txt',
    })
    assert.deepEqual(releaseUrls('v1.34.1+k3s1', 'arm64', 'https://mirror.example/k3s/'), {
      asset: 'https://mirror.example/k3s/v1.34.1%2Bk3s1/k3s-arm64',
      sums: 'https://mirror.example/k3s/v1.34.1%2Bk3s1/sha256sum-arm64.txt',
    })
    assert.equal(assetName('amd64'), 'k3s')
    assert.equal(assetName('arm64'), 'k3s-arm64')
  })

  it("finds the asset's line in a sha256sum file, and only that one", function () {
    const a = 'a'.repeat(64)
    const b = 'B'.repeat(64)
    const text = `${a}  k3s-airgap-images-amd64.tar.zst\n${b} *k3s\n${'c'.repeat(64)}  ./k3s-arm64\n`
    assert.equal(sumFor(text, 'k3s'), 'b'.repeat(64))
    assert.equal(sumFor(text, 'k3s-arm64'), 'c'.repeat(64))
    assert.equal(sumFor(text, 'k3s-armhf'), undefined)
    assert.equal(sumFor('garbage\n', 'k3s'), undefined)
  })

  it('image tag: + becomes -', function () {
    assert.equal(imageTag('v1.34.1+k3s1'), 'v1.34.1-k3s1')
  })

  it('image references: Docker Hub maps to registry-1.docker.io over https, loopback registries use http', function () {
    assert.deepEqual(parseImageRef('docker.io/rancher/k3s', 'v1-k3s1'), {
      registry: 'docker.io',
      apiBase: 'https://registry-1.docker.io/v2/',
      repository: 'rancher/k3s',
      reference: 'v1-k3s1',
      display: 'docker.io/rancher/k3s:v1-k3s1',
    })
    assert.equal(parseImageRef('rancher/k3s', 't').apiBase, 'https://registry-1.docker.io/v2/')
    assert.equal(parseImageRef('busybox', 't').repository, 'library/busybox')
    assert.equal(parseImageRef('127.0.0.1:5000/rancher/k3s', 't').apiBase, 'http://127.0.0.1:5000/v2/')
    assert.equal(parseImageRef('localhost:5000/rancher/k3s', 't').apiBase, 'http://localhost:5000/v2/')
    assert.equal(parseImageRef('[::1]:5000/rancher/k3s', 't').apiBase, 'http://[::1]:5000/v2/')
    assert.equal(parseImageRef('registry.corp:5000/rancher/k3s', 't').apiBase, 'https://registry.corp:5000/v2/')
    assert.equal(parseImageRef('10.0.0.1:5000/rancher/k3s', 't').apiBase, 'https://10.0.0.1:5000/v2/')
    assert.equal(parseImageRef('ghcr.io/k3s-io/k3s:mine', 't').reference, 'mine')
    const digest = `sha256:${'0'.repeat(64)}`
    const pinned = parseImageRef(`127.0.0.1:5000/rancher/k3s@${digest}`, 't')
    assert.equal(pinned.reference, digest)
    assert.equal(pinned.display, `127.0.0.1:5000/rancher/k3s@${digest}`)
  })

  it('a bad image reference is bad inventory (exit 2)', function () {
    for (const bad of ['Rancher/K3S', 'rancher/k3s@sha256:1234', 'rancher/k3s:bad tag', 'rancher//k3s']) {
      assert.throws(
        () => parseImageRef(bad, 't'),
        (e: unknown) => e instanceof HybridError && e.exitCode === 2 && e.message.includes(bad),
        bad,
      )
    }
  })

  it('reads WWW-Authenticate Bearer challenges, commas inside quoted scopes included', function () {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:rancher/k3s:pull,push"',
      ),
      {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:rancher/k3s:pull,push',
      },
    )
    assert.deepEqual(parseChallenge('Bearer realm=http://t/token, error="invalid_token"'), {
      realm: 'http://t/token',
      error: 'invalid_token',
    })
  })

  it('sha256 pins: hex of any case, an optional sha256: prefix', function () {
    assert.equal(normalizeSha256(`sha256:${'AB'.repeat(32)}`), 'ab'.repeat(32))
    assert.equal(normalizeSha256('ab'.repeat(31)), undefined)
  })
})
