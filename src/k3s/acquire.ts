import {constants} from 'node:fs'
import {access, rm, stat} from 'node:fs/promises'

import pino, {type Logger} from 'pino'

import {HybridError} from '../errors.js'
import {cacheDir} from '../state/paths.js'
import {cacheEntry, ensureWritable, promote, readCached, withLock} from './binary-cache.js'
import {IntegrityError, normalizeSha256, sha256File} from './digest.js'
import {DownloadError, displayUrl, HttpClient} from './http.js'
import {downloadFromImage, imageFor} from './oci-image.js'
import {type Arch, assetName, downloadRelease, releaseUrls} from './release-download.js'

/**
 * Getting the k3s binary (docs/architecture.md, "The k3s binary"): spec.k3s.binary if given; else the per-version cache;
 * else the k3s release (or spec.k3s.mirror), checked against its sha256sum-<arch>.txt or the pin; and when
 * that is refused, the k3s OCI image through the registry API. Only a verified file enters the cache.
 */
export interface K3sSpec {
  version: string
  /** Absolute (the inventory loader resolves it). */
  binary?: string
  sha256?: string
  mirror?: string | null
  image?: string
}

export interface ProgressEvent {
  source: string
  bytes: number
  total?: number
}

export interface AcquireOptions {
  arch?: Arch
  /** Default cacheDir() ($HYBRID_CACHE_DIR, else $XDG_CACHE_HOME/hybrid). */
  cacheDir?: string
  onProgress?: (event: ProgressEvent) => void
  signal?: AbortSignal
  logger?: Logger
}

export interface AcquiredBinary {
  path: string
  sha256: string
  version: string
  source: 'local' | 'cache' | 'release' | 'image'
}

type Download = 'release' | 'image'

export async function acquireK3s(spec: K3sSpec, options: AcquireOptions = {}): Promise<AcquiredBinary> {
  const log = options.logger ?? pino({enabled: false})
  const version = checkVersion(spec.version)
  const pinned = spec.sha256 === undefined ? undefined : normalizeSha256(spec.sha256)
  if (spec.sha256 !== undefined && !pinned)
    throw new HybridError('INVENTORY_INVALID', `spec.k3s.sha256 "${spec.sha256}" is not a sha256 (64 hex digits).`, {
      exitCode: 2,
    })
  if (spec.binary) return localBinary(spec.binary, version, pinned)

  const arch = options.arch ?? hostArch()
  checkMirror(spec.mirror)
  // Both named now, so a bad image reference is bad inventory before anything is fetched.
  const names: Record<Download, string> = {
    release: sourceName('release', spec, version, arch),
    image: sourceName('image', spec, version, arch),
  }
  const asset = assetName(arch)
  const cacheRoot = options.cacheDir ?? cacheDir()
  const entry = cacheEntry(cacheRoot, version, asset)
  const fromCache = async (): Promise<AcquiredBinary | undefined> => {
    const sha256 = await readCached(entry, pinned)
    return sha256 ? {path: entry.binary, sha256, version, source: 'cache'} : undefined
  }
  const cached = await fromCache()
  if (cached) {
    log.debug({path: cached.path}, 'k3s binary from the cache')
    return cached
  }
  await ensureWritable(entry, cacheRoot)
  const onWait = (pid: number) =>
    log.info({pid}, `waiting for another hybrid (pid ${pid}) that is downloading k3s ${version}`)
  return withLock(entry, options.signal, onWait, async () => {
    const filled = await fromCache() // the process we waited for may have filled it
    if (filled) return filled
    const client = new HttpClient()
    const failures: string[] = []
    try {
      for (const source of ['release', 'image'] as Download[]) {
        const described = names[source]
        const onProgress = (bytes: number, total?: number) => options.onProgress?.({source, bytes, total})
        log.info({source, from: described}, `downloading k3s ${version} (${arch}) from ${described}`)
        try {
          const {sha256} =
            source === 'release'
              ? await downloadRelease({
                  client,
                  version,
                  arch,
                  mirror: spec.mirror,
                  pinned,
                  partial: entry.partial,
                  signal: options.signal,
                  onProgress,
                })
              : await downloadFromImage({
                  client,
                  image: spec.image,
                  version,
                  arch,
                  pinned,
                  partial: entry.partial,
                  layerFile: entry.layer,
                  signal: options.signal,
                  onProgress,
                })
          await promote(entry, asset, sha256)
          log.info({path: entry.binary, sha256}, `k3s ${version} verified and cached`)
          return {path: entry.binary, sha256, version, source}
        } catch (error) {
          await rm(entry.partial, {force: true})
          if (!(error instanceof DownloadError)) throw asUserError(error, cacheRoot, options.signal)
          log.warn({source, reason: error.message}, `${described} failed`)
          failures.push(`${described} failed: ${oneLine(error.message)}`)
        }
      }
    } finally {
      await client.close()
    }
    throw new HybridError(
      'K3S_BINARY_UNAVAILABLE',
      `Could not get k3s ${version} for linux/${arch}: it is not in the cache ${cacheRoot}; ${failures.join('; ')}; ` +
        'supply the binary with spec.k3s.binary: /path/to/k3s, or a reachable release mirror with spec.k3s.mirror.',
      {details: failures},
    )
  })
}

function sourceName(source: Download, spec: K3sSpec, version: string, arch: Arch): string {
  if (source === 'release') return `the release download ${displayUrl(releaseUrls(version, arch, spec.mirror).asset)}`
  return `the image ${imageFor({image: spec.image, version}).display}`
}

async function localBinary(path: string, version: string, pinned: string | undefined): Promise<AcquiredBinary> {
  let info
  try {
    info = await stat(path)
  } catch {
    throw new HybridError('K3S_BINARY_INVALID', `spec.k3s.binary ${path} does not exist.`)
  }
  if (!info.isFile()) throw new HybridError('K3S_BINARY_INVALID', `spec.k3s.binary ${path} is not a file.`)
  try {
    await access(path, constants.X_OK)
  } catch {
    throw new HybridError('K3S_BINARY_INVALID', `spec.k3s.binary ${path} is not executable (chmod +x ${path}).`)
  }
  const sha256 = await sha256File(path)
  if (pinned && sha256 !== pinned) {
    throw new IntegrityError(`spec.k3s.binary ${path} has sha256 ${sha256}, but spec.k3s.sha256 says ${pinned}.`)
  }
  return {path, sha256, version, source: 'local'}
}

/** A k3s release name (v1.34.1+k3s1, v1.30.0-rc1+k3s1): also a directory name in the cache, so nothing else. */
function checkVersion(version: string): string {
  if (!/^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z][0-9A-Za-z.+-]*)?$/.test(version ?? '')) {
    throw new HybridError(
      'INVENTORY_INVALID',
      `spec.k3s.version "${version}" is not a k3s release name such as v1.34.1+k3s1.`,
      {exitCode: 2},
    )
  }
  return version
}

function checkMirror(mirror: string | null | undefined): void {
  if (mirror === undefined || mirror === null) return
  let scheme = ''
  try {
    scheme = new URL(mirror).protocol
  } catch {
    // reported below
  }
  if (scheme !== 'http:' && scheme !== 'https:')
    throw new HybridError('INVENTORY_INVALID', `spec.k3s.mirror "${mirror}" is not an http:// or https:// URL.`, {
      exitCode: 2,
    })
}

function hostArch(): Arch {
  if (process.arch === 'x64') return 'amd64'
  if (process.arch === 'arm64') return 'arm64'
  throw new HybridError(
    'K3S_ARCH_UNSUPPORTED',
    `k3s releases exist for amd64 and arm64, not for this machine's ${process.arch}.`,
  )
}

/** Integrity failures pass as they are; a failing disk becomes a sentence; an abort stays an abort. */
function asUserError(error: unknown, cacheRoot: string, signal?: AbortSignal): unknown {
  if (error instanceof HybridError || signal?.aborted) return error
  const code = (error as NodeJS.ErrnoException).code
  if (code)
    return new HybridError(
      'K3S_CACHE_NOT_WRITABLE',
      `Writing the k3s binary into the cache ${cacheRoot} failed (${code}: ${oneLine((error as Error).message)}).`,
    )
  return error
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/[.\s]+$/, '')
}
