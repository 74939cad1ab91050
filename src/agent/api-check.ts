import {createHash} from 'node:crypto'

import {HybridError} from '../errors.js'
import {registerSecret} from '../log/redact.js'
import type {Host} from '../remote/host.js'

/**
 * From the worker, before anything is installed there: does the API answer at the address the agent will
 * use, is it this cluster's, and does it take the token? Done with curl on the worker, as the agent
 * would: `/cacerts` (no auth) hashed against the token's CA hash, then `/v1-k3s/readyz` with basic auth
 * `node:<secret>` over TLS pinned to that CA. The secret reaches curl on its standard input as a config
 * file (`-K -`), so it is in no argv, environment or file on the worker. curl rather than `k3s` itself:
 * the binary may not be there yet (the check comes first) and k3s has no such probe command; rather than
 * wget: wget has no way to read a password from standard input.
 */

export type ApiCheckProblem = 'tool-missing' | 'unreachable' | 'tls' | 'not-k3s' | 'wrong-cluster' | 'token-refused'

export class ApiCheckError extends HybridError {
  constructor(
    readonly host: string,
    readonly problem: ApiCheckProblem,
    message: string,
  ) {
    super('API_CHECK_FAILED', message)
    this.name = 'ApiCheckError'
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), host: this.host, problem: this.problem}
  }
}

export interface ApiCheck {
  /** False when the token carries no CA hash (a bare secret): the CA was taken as served, as k3s does. */
  readonly caVerified: boolean
}

/** A k3s token's parts: "K10<sha256 of the CA>::<user>:<password>", "K10<hash>::<password>", or a bare password. */
export function parseK3sToken(token: string): {caHash?: string; password: string} {
  const secure = /^K10([0-9a-f]{64})::(.+)$/i.exec(token.trim())
  if (!secure) return {password: token.trim()}
  const credentials = secure[2]
  const colon = credentials.indexOf(':')
  return {caHash: secure[1].toLowerCase(), password: colon < 0 ? credentials : credentials.slice(colon + 1)}
}

const CURL = ['curl', '-sS', '--noproxy', '*', '--connect-timeout', '5', '--max-time', '15']

/** $1 the server URL: the CA bundle it serves, on stdout. */
const FETCH_CA = `command -v curl >/dev/null 2>&1 || exit 127
exec ${CURL.map((a) => `'${a}'`).join(' ')} -k --fail -- "$1/cacerts"`

/** $1 the server URL, $2 the CA to pin; curl's config (with the password) on stdin. Prints the HTTP status. */
const READYZ = `t=$(mktemp) || exit 1
trap 'rm -f -- "$t"' EXIT
printf '%s' "$2" >"$t"
${CURL.map((a) => `'${a}'`).join(' ')} --cacert "$t" -K - -o /dev/null -w '%{http_code}' -- "$1/v1-k3s/readyz"`

/** curl's exit statuses for "nothing answered": resolve, connect, timeout, proxy, empty reply, receive. */
const UNREACHABLE = new Set([5, 6, 7, 28, 52, 56])
/** curl's exit statuses for TLS: handshake, certificate, host name, CA file. */
const TLS = new Set([35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91])

/** Check the API at `server` from `host` with `token`; throws ApiCheckError naming the host and what failed. */
export async function checkApiFromWorker(host: Host, server: string, token: string): Promise<ApiCheck> {
  const {caHash, password} = parseK3sToken(token)
  registerSecret(token)
  registerSecret(password)
  const fail = (problem: ApiCheckProblem, sentence: string) =>
    new ApiCheckError(host.name, problem, `${host.name}: ${sentence}`)
  const curlFailure = (exitCode: number | null, stderr: string, what: string) => {
    const why = stderr.trim().split('\n').pop() || `curl exited with ${exitCode}`
    if (exitCode === 127)
      return fail(
        'tool-missing',
        `curl is not installed, and hybrid needs it there to check that the API at ${server} answers; install curl`,
      )
    if (exitCode !== null && TLS.has(exitCode)) return fail('tls', `TLS with the API at ${server} failed (${why})`)
    if (exitCode !== null && UNREACHABLE.has(exitCode))
      return fail('unreachable', `the API at ${server} cannot be reached from there (${why})`)
    return fail('not-k3s', `${server} did not answer ${what} as a k3s server does (${why})`)
  }

  const ca = await host.run(['sh', '-c', FETCH_CA, 'sh', server])
  if (ca.exitCode !== 0) throw curlFailure(ca.exitCode, ca.stderr, '/cacerts')
  const served = createHash('sha256').update(ca.stdout).digest('hex')
  if (caHash && served !== caHash)
    throw fail(
      'wrong-cluster',
      `the API at ${server} is another cluster's: its CA's sha256 is ${served}, the token's is ${caHash}`,
    )

  const config = `user = "node:${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`
  const ready = await host.run(['sh', '-c', READYZ, 'sh', server, ca.stdout], {stdin: config})
  if (ready.exitCode !== 0) throw curlFailure(ready.exitCode, ready.stderr, '/v1-k3s/readyz')
  const status = ready.stdout.trim()
  if (status === '401' || status === '403')
    throw fail(
      'token-refused',
      `the API at ${server} refused the token (HTTP ${status}): it is not this cluster's token`,
    )
  if (status !== '200') throw fail('not-k3s', `the API at ${server} answered /v1-k3s/readyz with HTTP ${status}`)
  return {caVerified: caHash !== undefined}
}
