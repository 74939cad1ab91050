import {connect, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Client, ClientChannel} from 'ssh2'

import {messageOf} from '../errors.js'
import type {WorkerSpec} from '../inventory/model.js'
import {SshConnections} from '../remote/connections.js'
import type {Keepalive} from '../remote/ssh-connect.js'
import {whenAborted} from '../util/abort.js'
import {within} from '../util/processes.js'
import {type Backoff, backoffDelay, DEFAULT_BACKOFF} from './backoff.js'
import {openRemoteForward} from './remote-forward.js'

/**
 * The API tunnel of one worker (docs/architecture.md, "Tunnels"): an SSH connection of its own and a
 * remote forward, so that `bindAddress:bindPort` on the worker leads to the API on this machine's
 * 127.0.0.1:targetPort. It keeps itself up: keepalives notice a dead link within seconds, and any loss
 * (sshd killed or reloaded there, the network gone) is followed by a new connection after a backoff,
 * until stop().
 */

export interface TunnelTarget {
  readonly worker: WorkerSpec
  /** The advertised address on the worker, e.g. 100.64.255.1. */
  readonly bindAddress: string
  /** The API's port on the worker (controlPlane.apiPort). */
  readonly bindPort: number
  /** The API's port on this machine's 127.0.0.1. */
  readonly targetPort: number
}

export type TunnelState = 'connecting' | 'up' | 'down'

/** What `hybrid status` shows for one tunnel. */
export interface TunnelHealth {
  readonly worker: string
  readonly state: TunnelState
  /** When it entered that state (ISO 8601). */
  readonly since: string
  /** Why it is down (or was, before it came back): one sentence naming the worker. */
  readonly lastError?: string
  /** Connection attempts after the first. */
  readonly reconnects: number
  /** Connections carried to the API since the tunnel started. */
  readonly connections: number
}

export interface TunnelOptions {
  readonly backoff?: Backoff
  readonly keepalive?: Keepalive
  readonly env?: NodeJS.ProcessEnv
  /** Called on every change of state or error. */
  readonly onChange?: (health: TunnelHealth) => void
  /**
   * Bastion connections shared by every tunnel of a keeper (their owner closes them); without it a tunnel
   * dials its bastion on a connection of its own.
   */
  readonly bastions?: SshConnections
  /** Connections carried at once (default MAX_CARRIED). */
  readonly maxCarried?: number
}

/** A lost link is noticed after 3 unanswered keepalives 5 s apart. */
export const TUNNEL_KEEPALIVE: Keepalive = {intervalMs: 5000, countMax: 3}

/** How long stop() waits for sshd to close the listener and the connection before it lets go. */
const CLOSE_GRACE_MS = 3000

/**
 * Connections carried at once by one tunnel. The API's clients on a worker (kubelet, agent, flannel,
 * pods through the kubernetes Service) hold a few dozen; a worker that opens thousands is refused
 * past this rather than exhausting the supervisor's descriptors for every other worker.
 */
export const MAX_CARRIED = 512

/** One live connection with its forward in place. */
interface Session {
  readonly client: Client
  readonly connections: SshConnections
  /** Settles with the reason once the connection is gone. */
  readonly lost: Promise<string>
}

export class ApiTunnel {
  private current: TunnelHealth
  private readonly stopping = new AbortController()
  private readonly sockets = new Set<Socket>()
  private readonly running: Promise<void>
  private session?: Session

  constructor(
    readonly target: TunnelTarget,
    private readonly options: TunnelOptions = {},
  ) {
    this.current = {worker: target.worker.name, state: 'connecting', since: now(), reconnects: 0, connections: 0}
    // Nothing in keep() should throw; if something does (an onChange that throws), the tunnel ends down
    // with the reason rather than as an unhandled rejection in the supervisor.
    this.running = this.keep().catch((error: unknown) => {
      this.current = {
        ...this.current,
        state: 'down',
        since: now(),
        lastError: `${target.worker.name}: ${messageOf(error)}`,
      }
    })
  }

  health(): TunnelHealth {
    return this.current
  }

  /** Close the forward, the connection and every connection carried; resolves once all are closed. */
  async stop(): Promise<void> {
    this.stopping.abort()
    await this.running
  }

  private async keep(): Promise<void> {
    const backoff = this.options.backoff ?? DEFAULT_BACKOFF
    const stopped = whenAborted(this.stopping.signal).then(() => 'stopped')
    let failures = 0
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      if (attempt > 0) this.update({state: 'connecting', reconnects: this.current.reconnects + 1})
      try {
        this.session = await this.open()
      } catch (error) {
        if (this.stopping.signal.aborted) break
        this.update({state: 'down', lastError: messageOf(error)})
        await sleep(backoffDelay(backoff, ++failures), undefined, {signal: this.stopping.signal}).catch(() => {})
        continue
      }
      const upAt = Date.now()
      this.update({state: 'up'})
      const reason = await Promise.race([this.session.lost, stopped])
      if (this.stopping.signal.aborted) break
      await this.close(this.session)
      failures = Date.now() - upAt >= backoff.resetAfterMs ? 1 : failures + 1
      this.update({
        state: 'down',
        lastError: `${this.target.worker.name}: the API tunnel's SSH connection was lost (${reason}); reconnecting`,
      })
      await sleep(backoffDelay(backoff, failures), undefined, {signal: this.stopping.signal}).catch(() => {})
    }
    if (this.session) await this.close(this.session, true)
    this.update({state: 'down', lastError: undefined})
  }

  /** Connect and open the forward (checked to listen on the address asked for). */
  private async open(): Promise<Session> {
    const {worker, bindAddress, bindPort} = this.target
    const connections = this.options.bastions ?? new SshConnections(this.options.env)
    let client: Client
    try {
      client = (await connections.client(worker, this.options.keepalive ?? TUNNEL_KEEPALIVE)).client
    } catch (error) {
      if (!this.options.bastions) await connections.closeAll()
      throw error
    }
    // Requests and answers through the tunnel are small and latency-bound (the API's watches and probes):
    // no Nagle delay on either socket, as OpenSSH does for its forwards.
    client.setNoDelay(true)
    let reason = 'sshd closed it'
    client.on('error', (error: Error) => (reason = error.message))
    const lost = new Promise<string>((resolve) => client.once('close', () => resolve(reason)))
    const session = {client, connections, lost}
    try {
      if (this.stopping.signal.aborted) throw new Error('stopped')
      client.on('tcp connection', (info, accept, reject) => {
        if (info.destIP !== bindAddress || info.destPort !== bindPort) return reject()
        const max = this.options.maxCarried ?? MAX_CARRIED
        if (this.sockets.size >= max) {
          this.update({
            lastError: `${worker.name}: more than ${max} connections at once through the API tunnel; refusing more`,
          })
          return reject()
        }
        this.carry(accept())
      })
      await openRemoteForward(client, worker.name, bindAddress, bindPort, worker.ssh.connectTimeoutSeconds * 1000)
      return session
    } catch (error) {
      await this.close(session)
      throw error
    }
  }

  /** One connection from the worker, piped to the API on this machine. */
  private carry(channel: ClientChannel): void {
    this.update({connections: this.current.connections + 1}, false)
    const socket = connect({port: this.target.targetPort, host: '127.0.0.1', noDelay: true})
    this.sockets.add(socket)
    // A failure on either side drops both. A clean close of the API's side is left to the pipe, which ends
    // the channel after the data still waiting for sshd's window, so an answer is never cut short.
    const drop = () => {
      this.sockets.delete(socket)
      socket.destroy()
      channel.close()
    }
    socket.on('error', drop)
    socket.on('close', () => this.sockets.delete(socket))
    channel.on('error', drop)
    channel.on('close', drop)
    channel.pipe(socket).pipe(channel)
  }

  /** End a session; `cancel` first asks sshd to stop listening, so nothing is left bound on the worker. */
  private async close(session: Session, cancel = false): Promise<void> {
    const {client} = session
    if (cancel)
      await within(
        new Promise<void>((resolve) => {
          try {
            client.unforwardIn(this.target.bindAddress, this.target.bindPort, () => resolve())
          } catch {
            resolve() // not connected any more
          }
        }),
        CLOSE_GRACE_MS,
      )
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    client.end()
    await within(session.lost, CLOSE_GRACE_MS)
    client.destroy()
    if (!this.options.bastions) await session.connections.closeAll()
    if (this.session === session) this.session = undefined
  }

  private update(change: Partial<Omit<TunnelHealth, 'worker' | 'since'>>, notify = true): void {
    const since = change.state !== undefined && change.state !== this.current.state ? now() : this.current.since
    this.current = {...this.current, ...change, since}
    if (notify) this.options.onChange?.(this.current)
  }
}

function now(): string {
  return new Date().toISOString()
}
