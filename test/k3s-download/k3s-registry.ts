import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {createHash, sign} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePort} from '../helpers/free-port.js'

/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, its storage in
 * the test's temp dir, optionally with token auth served by a tiny token service here (ES256 JWTs with an
 * x5c chain, signed by a key made with openssl), so the anonymous Bearer-challenge path is real. Images
 * are pushed through the registry HTTP API, as `docker push` would.
 */
const run = promisify(execFile)
const SERVICE = 'hybrid-test-registry'
const ISSUER = 'hybrid-test-token-issuer'

export interface Registry {
  /** `127.0.0.1:<port>` */
  host: string
  root: string
  /** Scopes the token service was asked for, in order (token auth only). */
  tokenScopes: string[]
  tokenPort?: number
  /** Bearer token for pushing (token auth), else undefined. */
  pushToken(repository: string): Promise<string | undefined>
  close(): Promise<void>
}

export async function startRegistry(dir: string, options: {tokenAuth?: boolean} = {}): Promise<Registry> {
  await mkdir(join(dir, 'storage'), {recursive: true})
  const port = await freePort()
  const tokenScopes: string[] = []
  let tokenServer: Server | undefined
  let tokenPort: number | undefined
  let auth = ''
  if (options.tokenAuth) {
    const key = join(dir, 'token.key')
    const cert = join(dir, 'token.crt')
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=hybrid-test-token',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ])
    const keyPem = await readFile(key, 'utf8')
    const certDer = (await readFile(cert, 'utf8')).replace(/-----[^-]+-----|\s/g, '')
    tokenServer = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      const scope = url.searchParams.get('scope') ?? ''
      tokenScopes.push(scope)
      const access =
        scope === '' ? [] : [{type: 'repository', name: scope.split(':')[1], actions: scope.split(':')[2].split(',')}]
      res
        .writeHead(200, {'content-type': 'application/json'})
        .end(JSON.stringify({token: jwt(keyPem, certDer, access)}))
    })
    tokenPort = await freePort()
    await new Promise<void>((resolve) => tokenServer?.listen(tokenPort, '127.0.0.1', resolve))
    auth = `auth:\n  token:\n    realm: http://127.0.0.1:${tokenPort}/token\n    service: ${SERVICE}\n    issuer: ${ISSUER}\n    rootcertbundle: ${cert}\n`
  }
  const config = join(dir, 'registry.yml')
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  )
  const log = createWriteStream(join(dir, 'registry.log'))
  const child: ChildProcess = spawn('docker-registry', ['serve', config], {stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  const host = `127.0.0.1:${port}`
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    tokenServer?.closeAllConnections()
    await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()))
  }
  try {
    await waitUntilServing(`http://${host}/v2/`, child)
  } catch (error) {
    await close()
    throw error
  }
  return {
    host,
    root: join(dir, 'storage'),
    tokenScopes,
    tokenPort,
    async pushToken(repository) {
      if (!tokenPort) return undefined
      const response = await fetch(
        `http://127.0.0.1:${tokenPort}/token?service=${SERVICE}&scope=repository:${repository}:pull,push`,
      )
      return ((await response.json()) as {token: string}).token
    },
    close,
  }
}

async function waitUntilServing(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`)
    try {
      const response = await fetch(url)
      await response.arrayBuffer()
      return // 200, or 401 with token auth: either way it serves
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error('docker-registry did not start within 10 s')
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

/** A token distribution's token auth accepts: ES256, the signing certificate in x5c. */
function jwt(keyPem: string, certDer: string, access: unknown[]): string {
  const now = Math.floor(Date.now() / 1000)
  const header = {alg: 'ES256', typ: 'JWT', x5c: [certDer]}
  const claims = {
    iss: ISSUER,
    sub: '',
    aud: SERVICE,
    exp: now + 300,
    nbf: now - 10,
    iat: now,
    jti: String(Math.random()),
    access,
  }
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  const signature = sign('sha256', Buffer.from(input), {key: keyPem, dsaEncoding: 'ieee-p1363'})
  return `${input}.${b64url(signature)}`
}

export function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

/** The file distribution's filesystem driver keeps a blob's content in. */
export function blobPath(registry: Registry, digest: string): string {
  const hex = digest.slice('sha256:'.length)
  return join(registry.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')
}
