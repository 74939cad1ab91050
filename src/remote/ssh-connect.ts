import {readFile} from 'node:fs/promises'
import type {Duplex} from 'node:stream'

import ssh2, {type ConnectConfig} from 'ssh2'

import {clientSocket, coalesceWrites} from './coalesce-writes.js'
import {RemoteError} from './errors.js'
import {type HostKeyCheck, type HostKeyStatus, pinnedKey, verifyHostKey} from './host-key-policy.js'
import {connectThroughProxy} from './http-connect.js'
import {keyTypeOf, knownHostsName, parseKnownHosts, readKnownHosts, recordedKeyTypes} from './known-hosts.js'

/**
 * One SSH connection, up to the point where commands can run: the socket (direct, through an HTTP
 * CONNECT proxy, or a channel forwarded by a bastion), the host key under its policy, authentication
 * with a key file or ssh-agent, keepalives. Every way it can fail becomes a RemoteError with one sentence
 * naming the host and, where there is one, the fix; all of it within the connect timeout.
 */

export interface SshTarget extends HostKeyCheck {
  readonly user: string
  /** Absolute path of the private key; null: ssh-agent only. */
  readonly identityFile: string | null
  /** HTTP CONNECT proxy URL for the first hop. */
  readonly proxy?: string
  /** A connected bastion to forward through (then `proxy` is not used: the bastion already is the first hop). */
  readonly via?: {readonly client: ssh2.Client; readonly name: string}
  readonly connectTimeoutSeconds: number
  /** The identity file's passphrase (a secret: never logged). */
  readonly passphrase?: string
  /** Keepalives other than the default (a tunnel wants a lost connection noticed within seconds). */
  readonly keepalive?: Keepalive
}

export interface Keepalive {
  readonly intervalMs: number
  /** Unanswered keepalives after which the connection counts as lost. */
  readonly countMax: number
}

/** How far a connection attempt got (the worker table's columns follow it). */
export type ConnectStage = 'tcp' | 'handshake' | 'auth' | 'ready'

export interface SshConnection {
  readonly client: ssh2.Client
  readonly hostKey: HostKeyStatus
}

/** Seconds between keepalives, and how many may go unanswered before the connection counts as lost. */
const KEEPALIVE_INTERVAL_MS = 15_000
const KEEPALIVE_COUNT_MAX = 4

/** Failures carry how far the attempt got, so the checks can tell "unreachable" from "auth refused". */
export class ConnectError extends RemoteError {
  constructor(
    error: RemoteError,
    readonly stage: ConnectStage,
  ) {
    super(error.code, error.message, error.host)
  }
}

export async function connectSsh(target: SshTarget, env: NodeJS.ProcessEnv = process.env): Promise<SshConnection> {
  const auth = await authFor(target, env)
  const timeoutMs = target.connectTimeoutSeconds * 1000
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(), timeoutMs)
  let stage: ConnectStage = 'tcp'
  const client = new ssh2.Client()
  let hostKeyStatus: HostKeyStatus | undefined
  let hostKeyError: RemoteError | undefined
  const where = `${target.address}:${target.port}`
  try {
    const sock = await firstHop(target, deadline.signal)
    if (sock) stage = 'handshake'
    // A pin (under any policy) names the one type worth asking for.
    const pinned = typesOf(pinnedKey(target.pinned))
    const preferred = pinned.length > 0 || target.policy === 'pinned' ? pinned : await knownTypes(target)
    return await new Promise<SshConnection>((resolve, reject) => {
      const fail = (error: RemoteError) => {
        deadline.signal.removeEventListener('abort', onTimeout)
        client.removeAllListeners('ready')
        client.end()
        if (sock) sock.destroy()
        reject(new ConnectError(error, stage))
      }
      const onTimeout = () =>
        fail(
          new RemoteError(
            'SSH_TIMEOUT',
            stage === 'tcp'
              ? `${target.host}: no answer from ${where} within ${target.connectTimeoutSeconds}s (is the host up, and the address right?)`
              : `${target.host}: sshd at ${where} did not finish ${stage === 'auth' ? 'authentication' : 'the handshake'} within ${target.connectTimeoutSeconds}s`,
            target.host,
          ),
        )
      deadline.signal.addEventListener('abort', onTimeout, {once: true})
      client.on('connect', () => {
        stage = 'handshake'
      })
      client.on('ready', () => {
        stage = 'ready'
        deadline.signal.removeEventListener('abort', onTimeout)
        client.removeAllListeners('error')
        client.removeAllListeners('close')
        // Errors after this point surface through the calls that use the connection.
        client.on('error', () => undefined)
        resolve({client, hostKey: hostKeyStatus!})
      })
      client.on('error', (error: Error & {level?: string; code?: string}) =>
        fail(hostKeyError ?? describeConnectError(error, target, stage, auth)),
      )
      client.on('close', () =>
        fail(
          hostKeyError ??
            new RemoteError(
              'SSH_CONNECTION_LOST',
              `${target.host}: ${where} closed the connection during the ${stage}`,
              target.host,
            ),
        ),
      )
      const config: ConnectConfig = {
        ...(sock ? {sock} : {host: target.address, port: target.port}),
        username: target.user,
        ...auth.config,
        readyTimeout: timeoutMs + 1000,
        keepaliveInterval: target.keepalive?.intervalMs ?? KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: target.keepalive?.countMax ?? KEEPALIVE_COUNT_MAX,
        algorithms:
          preferred.length > 0 ? {serverHostKey: {prepend: hostKeyAlgorithms(preferred)} as never} : undefined,
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          stage = 'handshake'
          verifyHostKey(target, key).then(
            (status) => {
              hostKeyStatus = status
              stage = 'auth'
              verify(true)
            },
            (error: RemoteError) => {
              hostKeyError = error
              verify(false)
            },
          )
        },
      }
      client.connect(config)
      const socket = clientSocket(client)
      if (socket) coalesceWrites(socket)
    })
  } catch (error) {
    if (error instanceof ConnectError) throw error
    if (error instanceof RemoteError) throw new ConnectError(error, stage)
    throw error
  } finally {
    clearTimeout(timer)
  }
}

/** The socket to speak SSH over when it is not a direct TCP connection that ssh2 opens itself. */
async function firstHop(target: SshTarget, signal: AbortSignal): Promise<Duplex | undefined> {
  if (target.via) return forwardThrough(target.via, target, signal)
  if (target.proxy) return connectThroughProxy(target.proxy, target.address, target.port, target.host, signal)
  return undefined
}

function forwardThrough(
  via: {client: ssh2.Client; name: string},
  target: SshTarget,
  signal: AbortSignal,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const onAbort = () =>
      reject(
        new RemoteError(
          'SSH_TIMEOUT',
          `${target.host}: the bastion ${via.name} did not open a connection to ${target.address}:${target.port} within ${target.connectTimeoutSeconds}s`,
          target.host,
        ),
      )
    signal.addEventListener('abort', onAbort, {once: true})
    via.client.forwardOut('127.0.0.1', 0, target.address, target.port, (error, channel) => {
      signal.removeEventListener('abort', onAbort)
      if (error) {
        reject(
          new RemoteError(
            'SSH_BASTION_FAILED',
            `${target.host}: the bastion ${via.name} could not open a connection to ${target.address}:${target.port}: ${error.message.replace(/^\(SSH\) Channel open failure: /, '')}`,
            target.host,
          ),
        )
        return
      }
      if (signal.aborted) channel.close()
      else resolve(channel)
    })
  })
}

interface Auth {
  readonly config: Pick<ConnectConfig, 'privateKey' | 'agent' | 'passphrase'>
  /** For messages: "key /root/.ssh/id_ed25519", "ssh-agent", or both. */
  readonly offered: string
}

/** The key file when it can be read, and the agent when SSH_AUTH_SOCK is set; at least one of them. */
async function authFor(target: SshTarget, env: NodeJS.ProcessEnv): Promise<Auth> {
  const agent = env.SSH_AUTH_SOCK || undefined
  let privateKey: Buffer | undefined
  let unreadable: string | undefined
  if (target.identityFile) {
    try {
      privateKey = await readFile(target.identityFile)
    } catch (error) {
      unreadable = `${target.identityFile} cannot be read (${(error as NodeJS.ErrnoException).code})`
    }
    if (privateKey) {
      const parsed = ssh2.utils.parseKey(privateKey, target.passphrase)
      if (parsed instanceof Error) {
        unreadable = /encrypted|passphrase|decrypt|bad/i.test(parsed.message)
          ? target.passphrase !== undefined
            ? `${target.identityFile} does not open with the passphrase in ssh.passphraseEnv`
            : `${target.identityFile} is protected by a passphrase (load it into ssh-agent: ssh-add ${target.identityFile}, or name the variable holding it in ssh.passphraseEnv)`
          : `${target.identityFile} is not a private key ssh2 can read (${parsed.message})`
        privateKey = undefined
      }
    }
  }
  if (!privateKey && !agent)
    throw new RemoteError(
      'SSH_NO_KEY',
      `${target.host}: no key to log in with: ${unreadable ?? 'ssh.identityFile is null'} and SSH_AUTH_SOCK is not set (start ssh-agent, or set ssh.identityFile to a private key)`,
      target.host,
    )
  const offered = [privateKey ? `key ${target.identityFile}` : undefined, agent ? 'the keys of ssh-agent' : undefined]
    .filter(Boolean)
    .join(' and ')
  return {
    config: {privateKey, agent, ...(privateKey && target.passphrase ? {passphrase: target.passphrase} : {})},
    offered,
  }
}

function describeConnectError(
  error: Error & {level?: string; code?: string},
  target: SshTarget,
  stage: ConnectStage,
  auth: Auth,
): RemoteError {
  const where = `${target.address}:${target.port}`
  const host = target.host
  if (error.level === 'client-authentication')
    return new RemoteError(
      'SSH_AUTH_REFUSED',
      `${host}: ${where} refused ${auth.offered} for user ${target.user}; add the public key to ~${target.user}/.ssh/authorized_keys there, or set ssh.user / ssh.identityFile`,
      host,
    )
  if (error.level === 'client-timeout')
    return new RemoteError(
      'SSH_TIMEOUT',
      `${host}: sshd at ${where} did not finish the ${stage} within ${target.connectTimeoutSeconds}s`,
      host,
    )
  switch (error.code) {
    case 'ECONNREFUSED':
      return new RemoteError(
        'SSH_REFUSED',
        `${host}: ${where} refused the connection (is sshd running there, on port ${target.port}?)`,
        host,
      )
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new RemoteError(
        'SSH_UNREACHABLE',
        `${host}: no route to ${target.address} (${error.code}); check the address and this machine's network`,
        host,
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new RemoteError('SSH_UNREACHABLE', `${host}: the name ${target.address} cannot be resolved`, host)
    case 'ECONNRESET':
      return new RemoteError('SSH_CONNECTION_LOST', `${host}: ${where} reset the connection during the ${stage}`, host)
  }
  return new RemoteError('SSH_CONNECTION_LOST', `${host}: ${where}: ${error.message} (during the ${stage})`, host)
}

async function knownTypes(target: SshTarget): Promise<string[]> {
  const lines = parseKnownHosts(await readKnownHosts(target.knownHosts))
  return recordedKeyTypes(lines, knownHostsName(target.address, target.port))
}

function typesOf(key: Buffer | undefined): string[] {
  return key ? [keyTypeOf(key)] : []
}

/** Host-key algorithms for recorded key types ("ssh-rsa" keys sign with rsa-sha2-* too), as ssh orders them. */
function hostKeyAlgorithms(types: readonly string[]): string[] {
  return types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]))
}
