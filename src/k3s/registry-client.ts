import {createHash} from 'node:crypto'

import {IntegrityError, sha256File} from './digest.js'
import {
  DownloadError,
  displayUrl,
  downloadToFile,
  header,
  type HttpClient,
  type HttpResponse,
  readBody,
  statusError,
} from './http.js'
import type {ImageRef} from './image-ref.js'

/**
 * The OCI distribution API, read-only and anonymous: the bearer token a registry's `WWW-Authenticate`
 * challenge points to (Docker Hub hands one to anyone for public images), manifests checked against the
 * digest they were asked for, blobs downloaded resumably and checked against theirs. No container engine.
 */

export const MANIFEST_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const

const ACCEPT = Object.values(MANIFEST_TYPES).join(', ')
const MANIFEST_LIMIT = 4 << 20

export interface Manifest {
  mediaType: string
  digest: string
  json: Record<string, unknown>
}

export class RegistrySession {
  private token: string | undefined
  private challenge: string | undefined

  constructor(
    readonly ref: ImageRef,
    private readonly client: HttpClient,
    private readonly signal?: AbortSignal,
  ) {}

  /** The manifest `reference` (tag or digest) names; a digest reference must match what came back. */
  async manifest(reference: string): Promise<Manifest> {
    const url = `${this.ref.apiBase}${this.ref.repository}/manifests/${reference}`
    const response = await this.get(url, {accept: ACCEPT})
    if (response.status === 404) {
      await response.body.dump()
      throw new DownloadError(
        'status',
        `${this.ref.registry}/${this.ref.repository} has no ${reference} (HTTP 404)`,
        404,
      )
    }
    if (response.status !== 200) throw await statusError(response)
    const body = await readBody(response, MANIFEST_LIMIT)
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new IntegrityError(
        `The manifest ${reference} of image ${this.ref.display} has digest ${digest}; nothing was cached.`,
      )
    }
    let json: Record<string, unknown>
    try {
      json = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    } catch {
      throw new DownloadError('content', `the manifest ${reference} of ${this.ref.display} is not JSON`)
    }
    const contentType = (header(response.headers, 'content-type') ?? '').split(';')[0].trim()
    return {mediaType: typeof json.mediaType === 'string' ? json.mediaType : contentType, digest, json}
  }

  /** A small blob (an image config) whole, digest checked. */
  async smallBlob(digest: string): Promise<Buffer> {
    const response = await this.get(this.blobUrl(digest))
    if (response.status !== 200) throw await statusError(response)
    const body = await readBody(response, MANIFEST_LIMIT)
    const actual = `sha256:${createHash('sha256').update(body).digest('hex')}`
    if (actual !== digest)
      throw new IntegrityError(
        `The blob ${digest} of image ${this.ref.display} has digest ${actual}; nothing was cached.`,
      )
    return body
  }

  /** Download a layer blob into `path` (resuming after cuts), then verify its digest. */
  async blobToFile(digest: string, path: string, onProgress?: (bytes: number, total?: number) => void): Promise<void> {
    const url = this.blobUrl(digest)
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadToFile(this.client, url, path, {
          signal: this.signal,
          onProgress,
          headers: () => this.authHeaders(),
        })
        break
      } catch (error) {
        // A long download can outlive a short-lived token: fetch a new one once and continue.
        if (!(error instanceof DownloadError && error.status === 401 && this.challenge && attempt === 0)) throw error
        await this.authenticate(this.challenge)
      }
    }
    const actual = `sha256:${await sha256File(path)}`
    if (actual !== digest) {
      throw new IntegrityError(
        `The layer ${digest} of image ${this.ref.display} has digest ${actual} (a digest mismatch); nothing was cached.`,
      )
    }
  }

  private blobUrl(digest: string): string {
    return `${this.ref.apiBase}${this.ref.repository}/blobs/${digest}`
  }

  private authHeaders(): Record<string, string> {
    return this.token ? {authorization: `Bearer ${this.token}`} : {}
  }

  /** GET with the session's token; on a 401 with a Bearer challenge, fetch a token and ask again. */
  private async get(url: string, extra: Record<string, string> = {}): Promise<HttpResponse> {
    const response = await this.client.get(url, {headers: {...extra, ...this.authHeaders()}, signal: this.signal})
    if (response.status !== 401) return response
    const challenge = header(response.headers, 'www-authenticate') ?? ''
    await response.body.dump()
    if (!/^bearer\s/i.test(challenge)) {
      throw new DownloadError(
        'status',
        `${this.ref.registry} wants credentials for ${this.ref.repository} (HTTP 401), and hybrid only pulls public images`,
        401,
      )
    }
    this.challenge = challenge
    await this.authenticate(challenge)
    const retry = await this.client.get(url, {headers: {...extra, ...this.authHeaders()}, signal: this.signal})
    if (retry.status === 401) {
      await retry.body.dump()
      throw new DownloadError(
        'status',
        `${this.ref.registry} refused its own anonymous token for ${this.ref.repository} (HTTP 401): the image may be private`,
        401,
      )
    }
    return retry
  }

  /** `Bearer realm="…",service="…",scope="…"` → GET realm?service&scope → {token | access_token}. */
  private async authenticate(challenge: string): Promise<void> {
    const params = parseChallenge(challenge)
    if (!params.realm)
      throw new DownloadError('content', `${this.ref.registry} sent a Bearer challenge without a realm`)
    const url = new URL(params.realm)
    if (params.service) url.searchParams.set('service', params.service)
    url.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`)
    const response = await this.client.get(url, {signal: this.signal})
    if (response.status !== 200) throw await statusError(response)
    const body = await readBody(response, 1 << 20)
    let token: unknown
    try {
      const json = JSON.parse(body.toString('utf8')) as {token?: unknown; access_token?: unknown}
      token = json.token ?? json.access_token
    } catch {
      token = undefined
    }
    if (typeof token !== 'string' || token === '') {
      throw new DownloadError(
        'content',
        `the token service ${displayUrl(url.origin)} of ${this.ref.registry} answered without a token`,
      )
    }
    this.token = token
  }
}

/** The key="value" pairs of a WWW-Authenticate challenge (values may hold commas, e.g. a scope). */
export function parseChallenge(challenge: string): Record<string, string> {
  const params: Record<string, string> = {}
  const rest = challenge.replace(/^\s*\S+\s+/, '')
  for (const match of rest.matchAll(/([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[match[1].toLowerCase()] = (match[2] ?? match[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return params
}
