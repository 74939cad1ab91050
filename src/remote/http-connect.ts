import {connect as netConnect, type Socket} from 'node:net'

import {proxyFor, type ProxyEnv} from '../k3s/proxy-env.js'
import {RemoteError} from './errors.js'

/**
 * Reaching sshd through an HTTP CONNECT proxy (`ssh.proxy`), as sandboxes that let traffic out only
 * through one require. A refusal by the proxy is named as the proxy's (its status line, e.g.
 * "403 Filtered"), never mistaken for the worker refusing the connection.
 */

/** The proxy URL to use for `address:port` under `setting` ("env": HTTPS_PROXY and NO_PROXY), or undefined. */
export function proxyForWorker(
  setting: string | null,
  address: string,
  port: number,
  env: ProxyEnv = process.env,
): string | undefined {
  if (!setting) return undefined
  if (setting !== 'env') return setting
  // An SSH connection is a tunnel like an https request: the same variables decide, NO_PROXY included.
  const host = address.includes(':') ? `[${address}]` : address
  return proxyFor(new URL(`https://${host}:${port}`), env)
}

/** The proxy URL without credentials, for messages. */
export function describeProxy(proxyUrl: string): string {
  const url = new URL(proxyUrl)
  return `${url.protocol}//${url.host}`
}

/**
 * Open a tunnel to `address:port` through the proxy; resolves with the socket once the proxy answered
 * 2xx. Rejects with a RemoteError: SSH_PROXY_REFUSED when the proxy answered otherwise or could not be
 * reached, SSH_TIMEOUT when `signal` aborts first (the caller's connect deadline).
 */
export function connectThroughProxy(
  proxyUrl: string,
  address: string,
  port: number,
  host: string,
  signal: AbortSignal,
): Promise<Socket> {
  const url = new URL(proxyUrl)
  if (url.protocol !== 'http:')
    return Promise.reject(
      new RemoteError(
        'SSH_PROXY_REFUSED',
        `${host}: ssh.proxy ${describeProxy(proxyUrl)} is not an http:// proxy URL`,
        host,
      ),
    )
  const target = `${address.includes(':') ? `[${address}]` : address}:${port}`
  const proxyName = describeProxy(proxyUrl)
  const auth =
    url.username || url.password
      ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}\r\n`
      : ''
  return new Promise((resolve, reject) => {
    const socket = netConnect({host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80)})
    let answer = Buffer.alloc(0)
    const fail = (error: RemoteError) => {
      socket.destroy()
      signal.removeEventListener('abort', onAbort)
      reject(error)
    }
    const onAbort = () =>
      fail(
        new RemoteError(
          'SSH_TIMEOUT',
          `${host}: the proxy ${proxyName} did not open a tunnel to ${target} in time`,
          host,
        ),
      )
    signal.addEventListener('abort', onAbort, {once: true})
    socket.once('connect', () => {
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`)
    })
    socket.on('error', (error: NodeJS.ErrnoException) =>
      fail(
        new RemoteError(
          'SSH_PROXY_REFUSED',
          `${host}: cannot reach the proxy ${proxyName}: ${error.code ?? error.message}`,
          host,
        ),
      ),
    )
    socket.on('close', () =>
      fail(
        new RemoteError(
          'SSH_PROXY_REFUSED',
          `${host}: the proxy ${proxyName} closed the connection before answering CONNECT ${target}`,
          host,
        ),
      ),
    )
    const onData = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk])
      const end = answer.indexOf('\r\n\r\n')
      if (end < 0) {
        if (answer.length > 64 * 1024)
          fail(new RemoteError('SSH_PROXY_REFUSED', `${host}: the proxy ${proxyName} sent no HTTP answer`, host))
        return
      }
      // Hold what follows (sshd's banner may already be on its way) until ssh2 reads the socket.
      socket.pause()
      socket.off('data', onData)
      socket.removeAllListeners('close')
      socket.removeAllListeners('error')
      const statusLine = answer.subarray(0, answer.indexOf('\r\n')).toString('latin1')
      const status = /^HTTP\/\d(?:\.\d)?\s+(\d{3})\s*(.*)$/.exec(statusLine)
      if (!status || !status[1].startsWith('2')) {
        const said = status ? `${status[1]} ${status[2]}`.trim() : JSON.stringify(statusLine)
        fail(
          new RemoteError(
            'SSH_PROXY_REFUSED',
            `${host}: the proxy ${proxyName} refused the tunnel to ${target}: ${said}`,
            host,
          ),
        )
        return
      }
      signal.removeEventListener('abort', onAbort)
      const rest = answer.subarray(end + 4)
      if (rest.length > 0) socket.unshift(rest)
      resolve(socket)
    }
    socket.on('data', onData)
  })
}
