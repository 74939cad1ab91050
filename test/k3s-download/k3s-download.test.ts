import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {acquireK3s, type K3sSpec, type ProgressEvent} from '../../src/k3s/acquire.js'
import {HybridError} from '../../src/errors.js'
import {freePort} from '../helpers/free-port.js'
import {clearProxyEnv, type Mirror, sha256, startMirror} from './k3s-mirror.js'

/**
 * The k3s binary from a release mirror: a real HTTP server on 127.0.0.1 serving a fake 3 MiB "k3s" and its
 * sha256sum files. Download, verification, the cache, a cut connection resumed with Range, a wrong
 * checksum, every source offline, a local binary, an unwritable cache. (The image fallback and the proxy
 * have their own files.)
 */
const VERSION = 'v1.34.1+k3s1'
const AMD64 = randomBytes(3 << 20)
const ARM64 = randomBytes(1 << 20)

/** Nothing listens here, so the image fallback fails fast and never leaves this machine. */
let offlineImage: string
let mirror: Mirror
let dir: string

function spec(extra: Partial<K3sSpec> = {}): K3sSpec {
  return {version: VERSION, mirror: mirror.url, image: offlineImage, ...extra}
}

function cacheOf(): string {
  return join(dir, 'cache')
}

async function filesUnder(path: string): Promise<string[]> {
  try {
    return await readdir(path)
  } catch {
    return []
  }
}

async function failure(promise: Promise<unknown>): Promise<HybridError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(error instanceof HybridError, `expected a HybridError, got ${String(error)}`)
  assert.ok(!error.message.includes('\n'), 'the message is one line')
  return error
}

describe('k3s binary: release download', function () {
  let restoreEnv: () => void

  before(async function () {
    restoreEnv = clearProxyEnv()
    offlineImage = `127.0.0.1:${await freePort()}/rancher/k3s`
  })

  after(function () {
    restoreEnv?.()
  })

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-k3s-dl-'))
    mirror = await startMirror(VERSION, {k3s: AMD64, 'k3s-arm64': ARM64})
  })

  afterEach(async function () {
    await mirror.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('downloads, verifies against sha256sum-amd64.txt, caches 0755, then uses the cache without asking the server', async function () {
    const events: ProgressEvent[] = []
    const first = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf(), onProgress: (e) => events.push(e)})
    assert.equal(first.source, 'release')
    assert.equal(first.sha256, sha256(AMD64))
    assert.equal(first.path, join(cacheOf(), 'k3s', VERSION, 'k3s'))
    assert.deepEqual(await readFile(first.path), AMD64)
    assert.equal((await stat(first.path)).mode & 0o777, 0o755)
    assert.equal(await readFile(`${first.path}.sha256`, 'utf8'), `${sha256(AMD64)}  k3s\n`)
    assert.deepEqual((await filesUnder(join(cacheOf(), 'k3s', VERSION))).sort(), ['k3s', 'k3s.sha256'])
    // + in the version travels as %2B, and the sums file is fetched before the asset.
    assert.deepEqual(
      mirror.requests.map((r) => r.rawPath),
      [`/v1.34.1%2Bk3s1/sha256sum-amd64.txt`, `/v1.34.1%2Bk3s1/k3s`],
    )
    assert.equal(events.at(-1)?.bytes, AMD64.length)
    assert.equal(events.at(-1)?.total, AMD64.length)
    assert.equal(events.at(-1)?.source, 'release')

    const seen = mirror.requests.length
    const second = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    assert.deepEqual(second, {...first, source: 'cache'})
    assert.equal(mirror.requests.length, seen, 'the server saw no request')
  })

  it('takes k3s-arm64 and sha256sum-arm64.txt for arm64', async function () {
    const got = await acquireK3s(spec(), {arch: 'arm64', cacheDir: cacheOf()})
    assert.equal(got.sha256, sha256(ARM64))
    assert.equal(got.path, join(cacheOf(), 'k3s', VERSION, 'k3s-arm64'))
    assert.deepEqual(
      mirror.requests.map((r) => r.path),
      [`/${VERSION}/sha256sum-arm64.txt`, `/${VERSION}/k3s-arm64`],
    )
  })

  it('with a pinned sha256 checks the pin and does not fetch the sums file', async function () {
    const got = await acquireK3s(spec({sha256: sha256(AMD64).toUpperCase()}), {arch: 'amd64', cacheDir: cacheOf()})
    assert.equal(got.sha256, sha256(AMD64))
    assert.deepEqual(
      mirror.requests.map((r) => r.path),
      [`/${VERSION}/k3s`],
    )
  })

  it('follows a redirect to another host, with Basic auth from the mirror URL sent to the mirror only', async function () {
    const storage = await startMirror(VERSION, {k3s: AMD64})
    try {
      mirror.behaviour.redirectTo = storage.url
      const withCredentials = mirror.url.replace('http://', 'http://reader:s%40cret@')
      const got = await acquireK3s(spec({mirror: withCredentials}), {arch: 'amd64', cacheDir: cacheOf()})
      assert.deepEqual(await readFile(got.path), AMD64)
      const basic = `Basic ${Buffer.from('reader:s@cret').toString('base64')}`
      assert.deepEqual(
        mirror.requests.map((r) => r.authorization),
        [basic, basic],
      )
      assert.deepEqual(
        storage.requests.map((r) => [r.path, r.authorization]),
        [[`/${VERSION}/k3s`, undefined]],
      )
    } finally {
      await storage.close()
    }
  })

  it('an abort stops the download and leaves nothing in the cache', async function () {
    const controller = new AbortController()
    const error = await acquireK3s(spec(), {
      arch: 'amd64',
      cacheDir: cacheOf(),
      signal: controller.signal,
      onProgress: () => controller.abort(),
    }).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.equal((error as Error).name, 'AbortError')
    assert.deepEqual(await filesUnder(join(cacheOf(), 'k3s')), [])
  })

  it('a wrong checksum in sha256sum-amd64.txt: one sentence with both sha256s, nothing left in the cache', async function () {
    const wrong = 'ab'.repeat(32)
    mirror.behaviour.wrongSum = wrong
    const error = await failure(acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()}))
    assert.equal(error.exitCode, 1)
    assert.match(error.message, new RegExp(`has sha256 ${sha256(AMD64)}, but .*sha256sum-amd64\\.txt says ${wrong}`))
    assert.deepEqual(await filesUnder(join(cacheOf(), 'k3s', VERSION)), [])
    // An integrity failure is not papered over by another source.
    assert.ok(!error.message.includes('image'))
  })

  it('a wrong pinned sha256: one sentence naming spec.k3s.sha256, nothing cached', async function () {
    const pin = 'cd'.repeat(32)
    const error = await failure(acquireK3s(spec({sha256: pin}), {arch: 'amd64', cacheDir: cacheOf()}))
    assert.match(error.message, new RegExp(`has sha256 ${sha256(AMD64)}, but spec.k3s.sha256 says ${pin}`))
    assert.deepEqual(await filesUnder(join(cacheOf(), 'k3s', VERSION)), [])
  })

  it('a connection cut mid-body is resumed with a Range request and the result verified', async function () {
    mirror.behaviour.cutAfter = 1 << 20
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    assert.equal(got.source, 'release')
    assert.deepEqual(await readFile(got.path), AMD64)
    const assetRequests = mirror.requests.filter((r) => r.path.endsWith('/k3s'))
    assert.equal(assetRequests.length, 2)
    assert.equal(assetRequests[0].range, undefined)
    // Resumed after what had reached the disk: at most the bytes sent before the cut (undici drops what
    // it had buffered but not yet handed over when the socket fails), and more than nothing.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(assetRequests[1].range ?? '')?.[1])
    assert.ok(resumedAt > 0 && resumedAt <= 1 << 20, `resumed at ${assetRequests[1].range}`)
  })

  it('a server that ignores Range after a cut: the download starts over and is still right', async function () {
    mirror.behaviour.cutAfter = 512 << 10
    mirror.behaviour.ignoreRange = true
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    assert.deepEqual(await readFile(got.path), AMD64)
    assert.equal(mirror.requests.filter((r) => r.path.endsWith('/k3s')).length, 2)
  })

  it('a connection cut again and again: gives up on the release, names the cuts, leaves no .partial', async function () {
    this.timeout(30_000)
    mirror.behaviour.cutAfter = 64 << 10
    mirror.behaviour.cutTimes = 1000
    const error = await failure(acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()}))
    assert.match(
      error.message,
      /the release download http:\/\/127\.0\.0\.1:\d+\/v1\.34\.1%2Bk3s1\/k3s failed: the connection to 127\.0\.0\.1:\d+ was cut 6 times/,
    )
    assert.deepEqual(await filesUnder(join(cacheOf(), 'k3s', VERSION)), [])
  })

  it('every source offline: one sentence naming each source, why it failed, and how to supply the binary', async function () {
    const offlineMirror = `http://127.0.0.1:${await freePort()}`
    const error = await failure(acquireK3s(spec({mirror: offlineMirror}), {arch: 'amd64', cacheDir: cacheOf()}))
    assert.equal(error.exitCode, 1)
    assert.ok(error.message.includes(`it is not in the cache ${cacheOf()}`), error.message)
    assert.ok(
      error.message.includes(
        `the release download ${offlineMirror}/v1.34.1%2Bk3s1/k3s failed: nothing accepts connections at 127.0.0.1:`,
      ),
      error.message,
    )
    assert.ok(
      error.message.includes(`the image ${offlineImage}:v1.34.1-k3s1 failed: nothing accepts connections at`),
      error.message,
    )
    assert.ok(error.message.includes('spec.k3s.binary: /path/to/k3s'))
    assert.ok(error.message.includes('spec.k3s.mirror'))
    assert.deepEqual(await filesUnder(join(cacheOf(), 'k3s', VERSION)), [])
  })

  it('a cached binary that changed on disk is not trusted: it is downloaded again', async function () {
    const first = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    await writeFile(first.path, Buffer.from('tampered'))
    const seen = mirror.requests.length
    const again = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    assert.equal(again.source, 'release')
    assert.deepEqual(await readFile(again.path), AMD64)
    assert.ok(mirror.requests.length > seen)
  })

  it('two acquisitions at once download once: the second waits for the lock and takes the cache', async function () {
    const results = await Promise.all([1, 2].map(() => acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})))
    assert.deepEqual(results.map((r) => r.source).sort(), ['cache', 'release'])
    assert.equal(mirror.requests.filter((r) => r.path.endsWith('/k3s')).length, 1)
  })

  it('a lock and partial files left by a dead process are taken over, and nothing of them is kept or continued', async function () {
    const versionDir = join(cacheOf(), 'k3s', VERSION)
    await mkdir(versionDir, {recursive: true})
    await writeFile(join(versionDir, 'k3s.lock'), '999999999')
    await writeFile(join(versionDir, 'k3s.partial'), Buffer.from('left over from a killed run'))
    await writeFile(join(versionDir, 'k3s.layer.partial'), Buffer.from('a layer left over'))
    const got = await acquireK3s(spec(), {arch: 'amd64', cacheDir: cacheOf()})
    assert.deepEqual(await readFile(got.path), AMD64)
    assert.equal(mirror.requests.find((r) => r.path.endsWith('/k3s'))?.range, undefined)
    assert.deepEqual((await filesUnder(versionDir)).sort(), ['k3s', 'k3s.sha256'])
  })

  it('an unwritable cache directory: one sentence', async function () {
    const blocker = join(dir, 'a-file')
    await writeFile(blocker, '')
    const error = await failure(acquireK3s(spec(), {arch: 'amd64', cacheDir: join(blocker, 'cache')}))
    assert.match(
      error.message,
      /^The k3s cache directory .*a-file\/cache is not writable \(ENOTDIR\); set HYBRID_CACHE_DIR/,
    )
  })

  describe('spec.k3s.binary', function () {
    it('is used as it is, with its sha256, and nothing is downloaded', async function () {
      const path = join(dir, 'my-k3s')
      await writeFile(path, AMD64, {mode: 0o755})
      const got = await acquireK3s(spec({binary: path, sha256: sha256(AMD64)}), {cacheDir: cacheOf()})
      assert.deepEqual(got, {path, sha256: sha256(AMD64), version: VERSION, source: 'local'})
      assert.equal(mirror.requests.length, 0)
    })

    it('missing, not executable, or not matching the pin: one sentence each', async function () {
      const path = join(dir, 'my-k3s')
      assert.match(
        (await failure(acquireK3s(spec({binary: path})))).message,
        /^spec\.k3s\.binary .*my-k3s does not exist\.$/,
      )
      await writeFile(path, AMD64, {mode: 0o644})
      await chmod(path, 0o644)
      assert.match((await failure(acquireK3s(spec({binary: path})))).message, /is not executable \(chmod \+x /)
      await chmod(path, 0o755)
      const pin = 'ef'.repeat(32)
      assert.match(
        (await failure(acquireK3s(spec({binary: path, sha256: pin})))).message,
        new RegExp(`has sha256 ${sha256(AMD64)}, but spec.k3s.sha256 says ${pin}`),
      )
    })
  })

  it('a version, pin, mirror or image that is not one is bad inventory (exit 2), before anything is fetched', async function () {
    assert.equal((await failure(acquireK3s(spec({version: '../../etc'}), {cacheDir: cacheOf()}))).exitCode, 2)
    assert.equal((await failure(acquireK3s(spec({sha256: 'nope'}), {cacheDir: cacheOf()}))).exitCode, 2)
    assert.equal((await failure(acquireK3s(spec({mirror: 'ftp://mirror'}), {cacheDir: cacheOf()}))).exitCode, 2)
    assert.equal((await failure(acquireK3s(spec({image: 'Not/An/Image'}), {cacheDir: cacheOf()}))).exitCode, 2)
    assert.equal(mirror.requests.length, 0)
  })
})
