import {DownloadError, displayUrl, downloadToFile, type HttpClient, readBody, statusError} from './http.js'
import {IntegrityError, sha256File} from './digest.js'

/**
 * The k3s GitHub release (or a mirror with the same layout): `<base>/<version>/<asset>` beside
 * `<base>/<version>/sha256sum-<arch>.txt`.
 */
export const GITHUB_RELEASES = 'https://github.com/k3s-io/k3s/releases/download'

export type Arch = 'amd64' | 'arm64'

/** The release asset's file name: `k3s` for amd64, `k3s-arm64` for arm64. */
export function assetName(arch: Arch): string {
  return arch === 'amd64' ? 'k3s' : `k3s-${arch}`
}

export interface ReleaseUrls {
  asset: string
  sums: string
}

/** `+` in a version must be %2B in a URL path (a literal `+` is fine for GitHub, not for every mirror). */
export function releaseUrls(version: string, arch: Arch, mirror?: string | null): ReleaseUrls {
  const base = (mirror ?? GITHUB_RELEASES).replace(/\/+$/, '')
  const dir = `${base}/${encodeURIComponent(version)}`
  return {asset: `${dir}/${assetName(arch)}`, sums: `${dir}/sha256sum-${arch}.txt`}
}

/** The sha256 sha256sum's output gives for `file` (lines `<hex>  <name>` or `<hex> *<name>`). */
export function sumFor(text: string, file: string): string | undefined {
  for (const line of text.split('\n')) {
    const match = /^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$/.exec(line)
    if (match && match[2].replace(/^\.\//, '') === file) return match[1].toLowerCase()
  }
  return undefined
}

export interface ReleaseDownload {
  client: HttpClient
  version: string
  arch: Arch
  mirror?: string | null
  /** The pinned sha256 (spec.k3s.sha256); else the release's sha256sum file is the reference. */
  pinned?: string
  /** Where to write; the caller removes it whatever happens. */
  partial: string
  signal?: AbortSignal
  onProgress?: (bytes: number, total?: number) => void
}

/** Download the asset into `partial` and verify it; resolves to its sha256, or throws why not. */
export async function downloadRelease(options: ReleaseDownload): Promise<{sha256: string; url: string}> {
  const urls = releaseUrls(options.version, options.arch, options.mirror)
  const asset = assetName(options.arch)
  let expected = options.pinned
  let reference = 'spec.k3s.sha256'
  if (!expected) {
    const response = await options.client.get(urls.sums, {signal: options.signal})
    if (response.status !== 200) throw await statusError(response)
    const text = (await readBody(response, 1 << 20)).toString('utf8')
    expected = sumFor(text, asset)
    if (!expected) throw new DownloadError('status', `${displayUrl(urls.sums)} lists no sha256 for ${asset}`)
    reference = displayUrl(urls.sums)
  }
  await downloadToFile(options.client, urls.asset, options.partial, {
    signal: options.signal,
    onProgress: options.onProgress,
  })
  const actual = await sha256File(options.partial)
  if (actual !== expected) {
    throw new IntegrityError(
      `The k3s ${options.version} binary downloaded from ${displayUrl(urls.asset)} has sha256 ${actual}, but ${reference} says ${expected}; nothing was cached.`,
    )
  }
  return {sha256: actual, url: urls.asset}
}
