import {createHash} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

/**
 * A k3s release mirror for tests: a real node:http server on 127.0.0.1 laid out like
 * github.com/k3s-io/k3s/releases/download (`/<version>/<asset>`, `/<version>/sha256sum-<arch>.txt`), with
 * the faults the acquisition must survive: a refused download, a wrong checksum, a connection cut mid-body.
 */
export interface MirrorRequest {
  /** The path as sent, before percent-decoding. */
  rawPath: string
  path: string
  range?: string
  authorization?: string
}

export interface MirrorBehaviour {
  /** Answer this status for every asset request (403: the release download is refused). */
  assetStatus?: number
  /** Cut the connection after this many body bytes, for the first `cutTimes` asset requests. */
  cutAfter?: number
  cutTimes?: number
  /** Publish this sha256 for every asset instead of the real one. */
  wrongSum?: string
  /** Ignore Range headers (a server that cannot resume). */
  ignoreRange?: boolean
  /** Answer asset requests with a 302 to this base URL (GitHub sends release assets to another host). */
  redirectTo?: string
}

export interface Mirror {
  url: string
  requests: MirrorRequest[]
  behaviour: MirrorBehaviour
  close(): Promise<void>
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Serve `assets` (name → content) for `version`, with a sha256sum file per arch. */
export async function startMirror(version: string, assets: Record<string, Buffer>): Promise<Mirror> {
  const requests: MirrorRequest[] = []
  const behaviour: MirrorBehaviour = {}
  let cuts = 0
  const sums = (arch: string) => {
    const asset = arch === 'amd64' ? 'k3s' : `k3s-${arch}`
    const content = assets[asset]
    if (!content) return undefined
    // Real sums files list several files; the asset is not the first.
    return `${'0'.repeat(64)}  k3s-airgap-images-${arch}.tar\n${behaviour.wrongSum ?? sha256(content)}  ${asset}\n`
  }
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const rawPath = new URL(req.url ?? '/', 'http://x').pathname
    const path = decodeURIComponent(rawPath)
    requests.push({rawPath, path, range: req.headers.range, authorization: req.headers.authorization})
    const [, dir, name] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? []
    if (dir !== version) return void res.writeHead(404).end('not found')
    const sumArch = /^sha256sum-(.+)\.txt$/.exec(name)?.[1]
    if (sumArch) {
      const text = sums(sumArch)
      return void (text ? res.writeHead(200, {'content-type': 'text/plain'}).end(text) : res.writeHead(404).end())
    }
    const content = assets[name]
    if (!content) return void res.writeHead(404).end('not found')
    if (behaviour.assetStatus) return void res.writeHead(behaviour.assetStatus).end('refused')
    if (behaviour.redirectTo) return void res.writeHead(302, {location: `${behaviour.redirectTo}${rawPath}`}).end()
    const range = !behaviour.ignoreRange && /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    if (start >= content.length) return void res.writeHead(416, {'content-range': `bytes */${content.length}`}).end()
    const body = content.subarray(start)
    res.writeHead(range ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...(range ? {'content-range': `bytes ${start}-${content.length - 1}/${content.length}`} : {}),
    })
    if (behaviour.cutAfter !== undefined && cuts < (behaviour.cutTimes ?? 1)) {
      cuts++
      // Send exactly cutAfter bytes, then close the connection (FIN, so all of them arrive; a destroy could
      // reset it and lose some): the client sees the body end early.
      res.write(body.subarray(0, behaviour.cutAfter), () => res.socket?.end())
      return
    }
    res.end(body)
  }
  const server: Server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    behaviour,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']

/**
 * Clear the proxy variables (a CI machine may set them; these tests talk to 127.0.0.1 only and must never
 * be routed to a proxy elsewhere); returns the function that puts them back.
 */
export function clearProxyEnv(): () => void {
  const saved = Object.fromEntries(PROXY_VARS.map((name) => [name, process.env[name]]))
  for (const name of PROXY_VARS) delete process.env[name]
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}
