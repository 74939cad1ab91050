import {open} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {Agent, type Dispatcher, ProxyAgent, request} from 'undici'

import {proxyFor, type ProxyEnv} from './proxy-env.js'

/**
 * HTTP for the k3s downloads: GET with redirects followed by hand (so Authorization is dropped when a
 * redirect leaves the origin, as registries' blob redirects to a CDN need), through the proxy the
 * environment names (undici's ProxyAgent: a CONNECT tunnel, for http and https targets alike), and a
 * download into a `.partial` file that resumes with a Range request after a connection is cut mid-body.
 */

/**
 * Why a source failed, in words that fit into "… failed (<reason>)": an HTTP status, a proxy refusing the
 * tunnel, no connection, a connection cut too often, or content that is not what was expected (no such
 * platform, no such file).
 */
export type FailureKind = 'status' | 'proxy' | 'network' | 'cut' | 'content'

export class DownloadError extends Error {
  constructor(
    readonly kind: FailureKind,
    reason: string,
    readonly status?: number,
  ) {
    super(reason)
    this.name = 'DownloadError'
  }
}

export interface HttpResponse {
  url: URL
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
}

export interface GetOptions {
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** A URL fit for logs and messages: no user name or password. */
export function displayUrl(url: string | URL): string {
  const copy = new URL(String(url))
  copy.username = ''
  copy.password = ''
  // A bare origin (a proxy) reads better without the slash URL adds.
  return copy.pathname === '/' && !copy.search && !String(url).endsWith('/') ? copy.origin : copy.href
}

const MAX_REDIRECTS = 5

export class HttpClient {
  private readonly direct: Agent
  private readonly proxies = new Map<string, ProxyAgent>()

  /** `env` is read once, here: one acquisition sees one proxy configuration. */
  constructor(private readonly env: ProxyEnv = {...process.env}) {
    this.direct = new Agent(timeouts)
  }

  /** GET `url`, following redirects; any status is returned (the caller decides), network failures throw. */
  async get(url: string | URL, options: GetOptions = {}): Promise<HttpResponse> {
    let current = new URL(String(url))
    let headers = {...options.headers}
    if (current.username || current.password) {
      // A mirror written as https://user:password@host/…: Basic auth for that origin only, never in the URL.
      headers.authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(current.username)}:${decodeURIComponent(current.password)}`).toString('base64')}`
      current = new URL(displayUrl(current))
    }
    for (let hop = 0; ; hop++) {
      const response = await this.once(current, headers, options.signal)
      const location = header(response.headers, 'location')
      if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response
      await response.body.dump()
      if (hop >= MAX_REDIRECTS)
        throw new DownloadError('status', `more than ${MAX_REDIRECTS} redirects from ${displayUrl(url)}`)
      const next = new URL(location, current)
      if (next.origin !== current.origin) headers = withoutAuthorization(headers)
      current = next
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.direct.close(), ...[...this.proxies.values()].map((agent) => agent.close())])
  }

  private async once(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const proxy = proxyFor(url, this.env)
    try {
      const response = await request(url, {method: 'GET', headers, signal, dispatcher: this.dispatcher(proxy)})
      // A body that fails before its reader starts must not become an uncaught error; the reader still
      // sees the failure (iterating an errored stream throws).
      response.body.on('error', () => {})
      return {url, status: response.statusCode, headers: response.headers, body: response.body}
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw describeFailure(error, url, proxy)
    }
  }

  private dispatcher(proxy: string | undefined): Dispatcher {
    if (!proxy) return this.direct
    let agent = this.proxies.get(proxy)
    if (!agent) {
      let scheme: string
      try {
        scheme = new URL(proxy).protocol
      } catch {
        throw new DownloadError('proxy', 'the proxy named by HTTPS_PROXY or HTTP_PROXY is not a URL')
      }
      if (scheme !== 'http:' && scheme !== 'https:') {
        throw new DownloadError('proxy', `the proxy ${displayUrl(proxy)} is not an http:// or https:// proxy`)
      }
      agent = new ProxyAgent({uri: proxy, ...timeouts})
      this.proxies.set(proxy, agent)
    }
    return agent
  }
}

const timeouts = {connect: {timeout: 15_000}, headersTimeout: 30_000, bodyTimeout: 60_000}

export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => key.toLowerCase() !== 'authorization'))
}

/** Turn undici's and node's errors into one reason a user can act on. */
function describeFailure(error: unknown, url: URL, proxy: string | undefined): DownloadError {
  if (error instanceof DownloadError) return error
  const err = error as NodeJS.ErrnoException & {cause?: NodeJS.ErrnoException}
  const message = err?.message ?? String(error)
  // undici says "Proxy response (403) !== 200 when HTTP Tunneling"; curl's words are the ones users search for.
  const tunnel = /Proxy response \((\d+)\)/.exec(message)
  if (tunnel) {
    return new DownloadError(
      'proxy',
      `the proxy ${displayUrl(proxy ?? '')} refused the tunnel to ${url.host} (CONNECT tunnel failed, response ${tunnel[1]})`,
      Number(tunnel[1]),
    )
  }
  const code = err?.code ?? err?.cause?.code
  const via = proxy ? ` through the proxy ${displayUrl(proxy)}` : ''
  const target = proxy ? new URL(proxy).host : url.host
  switch (code) {
    case 'ECONNREFUSED':
      return new DownloadError(
        'network',
        proxy
          ? `the proxy ${displayUrl(proxy)} accepts no connections (ECONNREFUSED)`
          : `nothing accepts connections at ${url.host} (ECONNREFUSED)`,
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new DownloadError('network', `the name ${new URL(proxy ?? url).hostname} does not resolve (${code})`)
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new DownloadError('network', `connecting to ${target} timed out`)
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new DownloadError('network', `${url.host} sent no response${via} in ${timeouts.headersTimeout / 1000} s`)
    default:
      return new DownloadError('network', `${url.host}${via}: ${message}${code ? ` (${code})` : ''}`)
  }
}

/** Read a small response body whole, refusing more than `limit` bytes. */
export async function readBody(response: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length
      if (size > limit) {
        response.body.destroy()
        throw new DownloadError('status', `${displayUrl(response.url)} sent more than ${limit} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
  } catch (error) {
    if (error instanceof DownloadError) throw error
    throw new DownloadError('cut', `the connection to ${response.url.host} was cut: ${(error as Error).message}`)
  }
  return Buffer.concat(chunks)
}

/** A non-2xx response as an error (its body is discarded). */
export async function statusError(response: HttpResponse): Promise<DownloadError> {
  await response.body.dump().catch(() => {})
  return new DownloadError('status', `HTTP ${response.status} from ${displayUrl(response.url)}`, response.status)
}

export interface DownloadOptions {
  /** Headers for each attempt (a registry token may need refreshing between attempts). */
  headers?: () => Promise<Record<string, string>> | Record<string, string>
  signal?: AbortSignal
  onProgress?: (bytes: number, total?: number) => void
  /** How many times a connection cut mid-body is resumed before giving up. */
  retries?: number
}

/**
 * Append `url` to `partialPath` until it is complete, resuming after what the file already holds with a
 * Range request when a connection is cut mid-body. A server that ignores Range gets a fresh start. The
 * caller verifies the content and owns the file's lifecycle (it removes it on any failure).
 */
export async function downloadToFile(
  client: HttpClient,
  url: string,
  partialPath: string,
  options: DownloadOptions = {},
): Promise<number> {
  const retries = options.retries ?? 5
  // Append mode: after a truncate, writes start at 0 again.
  const handle = await open(partialPath, 'a', 0o600)
  try {
    for (let cuts = 1; ; cuts++) {
      const offset = (await handle.stat()).size
      const headers = {...(await options.headers?.()), ...(offset > 0 ? {range: `bytes=${offset}-`} : {})}
      const response = await client.get(url, {headers, signal: options.signal})
      const resumed =
        response.status === 206 &&
        Number(/^bytes (\d+)-/.exec(header(response.headers, 'content-range') ?? '')?.[1]) === offset
      if (response.status !== 200 && !resumed) {
        if (response.status !== 206 && response.status !== 416) throw await statusError(response)
        // Range not satisfiable, or answered for another offset: what we hold cannot be continued.
        await response.body.dump()
        await handle.truncate(0)
        continue
      }
      // A 200 to a Range request means the server ignored it: start over.
      if (!resumed && offset > 0) await handle.truncate(0)
      const start = resumed ? offset : 0
      const length = Number(header(response.headers, 'content-length') ?? Number.NaN)
      const total = Number.isFinite(length) ? start + length : undefined
      let written = start
      let cut: Error | undefined
      try {
        for await (const chunk of response.body) {
          await handle.write(chunk as Buffer) // a failed write is a disk problem and propagates as such
          written += (chunk as Buffer).length
          options.onProgress?.(written, total)
        }
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason
        if ((error as NodeJS.ErrnoException).syscall === 'write') throw error
        cut = error as Error
      }
      if (!cut && total !== undefined && written < total) cut = new Error(`${total - written} bytes short`)
      if (!cut) return written
      if (cuts > retries) {
        throw new DownloadError(
          'cut',
          `the connection to ${response.url.host} was cut ${cuts} times, the last after ${written} bytes (${cut.message})`,
        )
      }
      await sleep(200 * cuts, undefined, {signal: options.signal})
    }
  } finally {
    await handle.close()
  }
}
