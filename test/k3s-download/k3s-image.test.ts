import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {acquireK3s, type K3sSpec} from '../../src/k3s/acquire.js'
import {HybridError} from '../../src/errors.js'
import {requireTool} from '../helpers/requires.js'
import {pushK3sImage} from './k3s-image-push.js'
import {freePort} from '../helpers/free-port.js'
import {clearProxyEnv, type Mirror, sha256, startMirror} from './k3s-mirror.js'
import {blobPath, type Registry, startRegistry} from './k3s-registry.js'

/**
 * The k3s binary from the k3s OCI image when the release download is refused: a real registry (Debian's
 * docker-registry, with token auth from a local token service) holding images pushed here through the
 * registry API, in both the OCI and the Docker formats; a corrupted layer; a missing platform.
 */
const VERSION = 'v1.34.1+k3s1'
const TAG = 'v1.34.1-k3s1'

function fakeBinary(label: string): Buffer {
  return Buffer.concat([Buffer.from(`#!/bin/sh\necho fake k3s ${label}\n`), randomBytes(256 << 10)])
}

async function failure(promise: Promise<unknown>): Promise<HybridError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(error instanceof HybridError, `expected a HybridError, got ${String(error)}`)
  assert.ok(!error.message.includes('\n'))
  return error
}

async function entries(path: string): Promise<string[]> {
  return readdir(path).catch(() => [])
}

describe('k3s binary: from the OCI image', function () {
  this.timeout(60_000)
  const binaries = {amd64: fakeBinary('amd64'), arm64: fakeBinary('arm64')}
  let dir: string
  let registry: Registry
  let mirror: Mirror
  let cache: string

  let restoreEnv: () => void

  before(async function () {
    restoreEnv = clearProxyEnv()
    requireTool(this, 'docker-registry')
    requireTool(this, 'openssl')
    dir = await mkdtemp(join(tmpdir(), 'hybrid-k3s-image-'))
    registry = await startRegistry(join(dir, 'registry'), {tokenAuth: true})
    await pushK3sImage(registry, dir, {repository: 'rancher/k3s', tag: TAG, binaries, format: 'oci'})
  })

  after(async function () {
    restoreEnv?.()
    await registry?.close()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  beforeEach(async function () {
    cache = await mkdtemp(join(dir, 'cache-'))
    mirror = await startMirror(VERSION, {k3s: fakeBinary('release'), 'k3s-arm64': fakeBinary('release-arm64')})
    registry.tokenScopes.length = 0
  })

  afterEach(async function () {
    await mirror?.close()
  })

  function spec(image: string, extra: Partial<K3sSpec> = {}): K3sSpec {
    return {version: VERSION, mirror: mirror.url, image: `${registry.host}/${image}`, ...extra}
  }

  it('a release download refused with 403 falls back to the image: anonymous token, linux/amd64, bin/k3s', async function () {
    mirror.behaviour.assetStatus = 403
    const got = await acquireK3s(spec('rancher/k3s'), {arch: 'amd64', cacheDir: cache})
    assert.equal(got.source, 'image')
    assert.equal(got.sha256, sha256(binaries.amd64))
    assert.deepEqual(await readFile(got.path), binaries.amd64)
    assert.ok(
      mirror.requests.some((r) => r.path === `/${VERSION}/k3s`),
      'the release was tried first',
    )
    assert.deepEqual([...new Set(registry.tokenScopes)], ['repository:rancher/k3s:pull'])
    // Verified and cached like a release download; no layer file left behind.
    assert.deepEqual((await entries(join(cache, 'k3s', VERSION))).sort(), ['k3s', 'k3s.sha256'])
    const again = await acquireK3s(spec('rancher/k3s'), {arch: 'amd64', cacheDir: cache})
    assert.equal(again.source, 'cache')
  })

  it('takes the linux/arm64 manifest for arm64', async function () {
    mirror.behaviour.assetStatus = 404
    const got = await acquireK3s(spec('rancher/k3s'), {arch: 'arm64', cacheDir: cache})
    assert.equal(got.source, 'image')
    assert.deepEqual(await readFile(got.path), binaries.arm64)
    assert.equal(got.path, join(cache, 'k3s', VERSION, 'k3s-arm64'))
  })

  it('reads a Docker manifest list as well, and a pinned sha256 is checked on the image path too', async function () {
    const docker = {amd64: fakeBinary('docker-amd64')}
    await pushK3sImage(registry, dir, {repository: 'dockerfmt/k3s', tag: TAG, binaries: docker, format: 'docker'})
    mirror.behaviour.assetStatus = 403
    const got = await acquireK3s(spec('dockerfmt/k3s', {sha256: sha256(docker.amd64)}), {
      arch: 'amd64',
      cacheDir: cache,
    })
    assert.deepEqual(await readFile(got.path), docker.amd64)

    const pin = '12'.repeat(32)
    const error = await failure(
      acquireK3s(spec('dockerfmt/k3s', {sha256: pin}), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))}),
    )
    assert.match(
      error.message,
      new RegExp(
        `The k3s binary in image ${registry.host}/dockerfmt/k3s:${TAG} has sha256 ${sha256(docker.amd64)}, but spec.k3s.sha256 says ${pin}`,
      ),
    )
  })

  it('a single-platform manifest is checked against its config: the wrong arch is refused in the sentence', async function () {
    const single = {amd64: fakeBinary('single')}
    await pushK3sImage(registry, dir, {
      repository: 'single/k3s',
      tag: TAG,
      binaries: single,
      format: 'oci',
      single: 'amd64',
    })
    mirror.behaviour.assetStatus = 403
    const got = await acquireK3s(spec('single/k3s'), {arch: 'amd64', cacheDir: cache})
    assert.deepEqual(await readFile(got.path), single.amd64)
    const error = await failure(acquireK3s(spec('single/k3s'), {arch: 'arm64', cacheDir: cache}))
    assert.match(
      error.message,
      new RegExp(
        `the image ${registry.host}/single/k3s:${TAG} failed: ${registry.host}/single/k3s:${TAG} is a linux/amd64 image, not linux/arm64;`,
      ),
    )
  })

  it('a corrupted layer: one digest-mismatch sentence, nothing cached', async function () {
    const corrupt = {amd64: fakeBinary('to-be-corrupted')}
    const pushed = await pushK3sImage(registry, dir, {
      repository: 'corrupt/k3s',
      tag: TAG,
      binaries: corrupt,
      format: 'oci',
    })
    const layer = pushed.k3sLayer.amd64 as string
    const stored = await readFile(blobPath(registry, layer))
    stored[stored.length >> 1] ^= 0xff // same size, different bytes
    await writeFile(blobPath(registry, layer), stored)
    mirror.behaviour.assetStatus = 403
    const error = await failure(acquireK3s(spec('corrupt/k3s'), {arch: 'amd64', cacheDir: cache}))
    assert.equal(error.exitCode, 1)
    assert.match(
      error.message,
      new RegExp(
        `^The layer ${layer} of image ${registry.host}/corrupt/k3s:${TAG} has digest sha256:[0-9a-f]{64} \\(a digest mismatch\\); nothing was cached\\.$`,
      ),
    )
    assert.deepEqual(await entries(join(cache, 'k3s', VERSION)), [])
  })

  it('a tag the registry lacks, with the release refused: one sentence naming both sources', async function () {
    mirror.behaviour.assetStatus = 403
    const error = await failure(
      acquireK3s(spec('rancher/k3s', {version: 'v9.9.9+k3s1'}), {arch: 'amd64', cacheDir: cache}),
    )
    assert.match(
      error.message,
      /the release download http:\/\/127\.0\.0\.1:\d+\/v9\.9\.9%2Bk3s1\/k3s failed: HTTP 404 from /,
    )
    assert.ok(
      error.message.includes(
        `the image ${registry.host}/rancher/k3s:v9.9.9-k3s1 failed: ${registry.host}/rancher/k3s has no v9.9.9-k3s1 (HTTP 404);`,
      ),
      error.message,
    )
  })

  it('a registry without auth, and a tag or digest written in spec.k3s.image', async function () {
    const plain = await startRegistry(join(dir, 'plain-registry'))
    try {
      const pushed = await pushK3sImage(plain, dir, {
        repository: 'rancher/k3s',
        tag: 'custom',
        binaries: {amd64: binaries.amd64},
        format: 'docker',
      })
      const offline = {version: VERSION, mirror: `http://127.0.0.1:${await freePort()}`}
      const byTag = await acquireK3s(
        {...offline, image: `${plain.host}/rancher/k3s:custom`},
        {arch: 'amd64', cacheDir: cache},
      )
      assert.deepEqual(await readFile(byTag.path), binaries.amd64)
      const byDigest = await acquireK3s(
        {...offline, image: `${plain.host}/rancher/k3s@${pushed.tagDigest}`},
        {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))},
      )
      assert.equal(byDigest.source, 'image')
      assert.equal(byDigest.sha256, sha256(binaries.amd64))
    } finally {
      await plain.close()
    }
  })
})
