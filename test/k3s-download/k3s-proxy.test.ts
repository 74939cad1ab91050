import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {acquireK3s, type K3sSpec} from '../../src/k3s/acquire.js'
import {HybridError} from '../../src/errors.js'
import {requireTool} from '../helpers/requires.js'
import {pushK3sImage} from './k3s-image-push.js'
import {freePort} from '../helpers/free-port.js'
import {clearProxyEnv, type Mirror, PROXY_VARS, sha256, startMirror} from './k3s-mirror.js'
import {type Registry, startRegistry} from './k3s-registry.js'
import {startTinyproxy, type Tinyproxy} from '../helpers/tinyproxy.js'

/**
 * Downloads through a real HTTP proxy (Debian's tinyproxy, started here on 127.0.0.1) named by
 * HTTPS_PROXY/HTTP_PROXY, with NO_PROXY not covering loopback, so the proxy is really used (its log
 * shows each CONNECT); and a proxy that refuses the tunnel to the release host (403), as sandbox proxies
 * refuse GitHub's release storage, so the binary comes from the registry it does allow.
 */
const VERSION = 'v1.34.1+k3s1'

describe('k3s binary: through an HTTP proxy', function () {
  this.timeout(60_000)
  const release = Buffer.concat([Buffer.from('fake k3s from the release\n'), randomBytes(2 << 20)])
  const imageBinary = Buffer.concat([Buffer.from('fake k3s from the image\n'), randomBytes(256 << 10)])
  let dir: string
  let mirror: Mirror
  let registry: Registry
  const proxies: Tinyproxy[] = []
  let restoreEnv: () => void

  before(async function () {
    requireTool(this, 'tinyproxy')
    requireTool(this, 'docker-registry')
    requireTool(this, 'openssl')
    dir = await mkdtemp(join(tmpdir(), 'hybrid-k3s-proxy-'))
    registry = await startRegistry(join(dir, 'registry'), {tokenAuth: true})
    await pushK3sImage(registry, dir, {
      repository: 'rancher/k3s',
      tag: 'v1.34.1-k3s1',
      binaries: {amd64: imageBinary},
      format: 'oci',
    })
    mirror = await startMirror(VERSION, {k3s: release})
  })

  after(async function () {
    await mirror?.close()
    await registry?.close()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  beforeEach(function () {
    restoreEnv = clearProxyEnv()
    mirror.requests.length = 0
  })

  afterEach(async function () {
    restoreEnv()
    while (proxies.length > 0) await proxies.pop()?.close()
  })

  async function proxy(options: {connectPorts?: number[]} = {}): Promise<Tinyproxy> {
    const started = await startTinyproxy(dir, options)
    proxies.push(started)
    return started
  }

  /** Route every request through `url`, loopback included (no NO_PROXY at all). */
  function useProxy(url: string): void {
    for (const name of PROXY_VARS) delete process.env[name]
    process.env.HTTPS_PROXY = url
    process.env.HTTP_PROXY = url
  }

  function spec(): K3sSpec {
    return {version: VERSION, mirror: mirror.url, image: `${registry.host}/rancher/k3s`}
  }

  it('downloads the release through the proxy: tinyproxy logs the CONNECT to the mirror', async function () {
    const tiny = await proxy()
    useProxy(tiny.url)
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))})
    assert.equal(got.source, 'release')
    assert.equal(got.sha256, sha256(release))
    const mirrorHost = new URL(mirror.url).host
    assert.ok((await tiny.connects()).includes(mirrorHost), `tinyproxy saw ${(await tiny.connects()).join(', ')}`)
  })

  it('a proxy that refuses the tunnel to the release host (403): the binary comes from the registry through it', async function () {
    const registryPort = Number(registry.host.split(':')[1])
    const tiny = await proxy({connectPorts: [registryPort, registry.tokenPort as number]})
    useProxy(tiny.url)
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))})
    assert.equal(got.source, 'image')
    assert.deepEqual(await readFile(got.path), imageBinary)
    assert.deepEqual(mirror.requests, [], 'the release host was never reached')
    assert.ok((await tiny.refusedPorts()).includes(Number(new URL(mirror.url).port)))
    const connects = await tiny.connects()
    assert.ok(
      connects.includes(registry.host) && connects.includes(`127.0.0.1:${registry.tokenPort}`),
      connects.join(', '),
    )
  })

  it('when the proxy refuses everything: one sentence with "CONNECT tunnel failed, response 403" for each source', async function () {
    const tiny = await proxy({connectPorts: [1]})
    useProxy(tiny.url)
    const error = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))}).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(error instanceof HybridError)
    const refusals = error.message.match(
      new RegExp(
        `the proxy ${tiny.url} refused the tunnel to 127\\.0\\.0\\.1:\\d+ \\(CONNECT tunnel failed, response 403\\)`,
        'g',
      ),
    )
    assert.equal(refusals?.length, 2, error.message)
    assert.ok(error.message.includes('spec.k3s.binary: /path/to/k3s'))
  })

  it('a proxy that is down is named in the sentence', async function () {
    const down = `http://127.0.0.1:${await freePort()}`
    useProxy(down)
    const error = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))}).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(error instanceof HybridError)
    assert.ok(error.message.includes(`the proxy ${down} accepts no connections (ECONNREFUSED)`), error.message)
  })

  it('a proxy setting that is not a URL is said so, not a crash', async function () {
    useProxy('http://[not-a-url')
    const error = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))}).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(error instanceof HybridError)
    assert.ok(
      error.message.includes('failed: the proxy named by HTTPS_PROXY or HTTP_PROXY is not a URL;'),
      error.message,
    )
  })

  it('NO_PROXY naming 127.0.0.1 bypasses the proxy', async function () {
    const tiny = await proxy()
    useProxy(tiny.url)
    process.env.NO_PROXY = 'localhost,127.0.0.1'
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: await mkdtemp(join(dir, 'cache-'))})
    assert.equal(got.source, 'release')
    assert.deepEqual(await tiny.connects(), [])
    assert.equal(mirror.requests.length, 2)
  })
})
