import type {Client} from 'ssh2'

import type {ResolvedBastion, WorkerSpec} from '../inventory/model.js'
import {withSecrets} from '../util/secret-env.js'
import {RemoteError} from './errors.js'
import {proxyForWorker} from './http-connect.js'
import {remoteLimits} from './limits.js'
import {ConnectError, connectSsh, type Keepalive, type SshConnection, type SshTarget} from './ssh-connect.js'
import {dialAddress} from './ssh-command.js'
import {SshHost} from './ssh-host.js'

/** The identity file's passphrase from the variable the inventory names (taken out of the environment at load). */
function passphraseOf(name: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return name === undefined ? undefined : env[name] || undefined
}

/**
 * One SSH connection per worker for the whole run, shared by every step that touches it (and one per
 * bastion, shared by the workers behind it). The entry point for everything remote:
 *   const hosts = new SshConnections(); const host = await hosts.host(worker); … await hosts.closeAll()
 */
export class SshConnections {
  private readonly hosts = new Map<string, Promise<SshHost>>()
  private readonly bastions = new Map<string, Promise<Client>>()

  /** `env` carries the sudo password to the hosts' sudo (never to a child process). */
  constructor(private readonly env: NodeJS.ProcessEnv = withSecrets()) {}

  /**
   * The worker's host, connecting on first use. A failed connection is not cached, and one that was lost
   * since (a connection kept while the control plane started) is not reused: a later call connects again.
   */
  async host(worker: WorkerSpec): Promise<SshHost> {
    for (let cached = this.hosts.get(worker.name); cached; cached = this.hosts.get(worker.name)) {
      const host = await cached.catch(() => undefined)
      if (host && !host.isLost) return host
      if (this.hosts.get(worker.name) === cached) this.hosts.delete(worker.name)
    }
    const host = this.connect(worker)
    this.hosts.set(worker.name, host)
    host.catch(() => {
      if (this.hosts.get(worker.name) === host) this.hosts.delete(worker.name)
    })
    return host
  }

  /** Close every connection (workers first, then bastions). */
  async closeAll(): Promise<void> {
    const hosts = [...this.hosts.values()]
    const bastions = [...this.bastions.values()]
    this.hosts.clear()
    this.bastions.clear()
    await Promise.all(
      hosts.map((h) =>
        h.then(
          (host) => host.close(),
          () => undefined,
        ),
      ),
    )
    await Promise.all(
      bastions.map((b) =>
        b.then(
          (client) => client.end(),
          () => undefined,
        ),
      ),
    )
  }

  /**
   * A connection of its own to the worker (neither shared nor kept: the caller ends it), reached and
   * verified as host() does, through the worker's bastion or proxy: for the API tunnel, which holds one
   * per worker for as long as the cluster runs.
   */
  async client(worker: WorkerSpec, keepalive?: Keepalive): Promise<SshConnection> {
    const ssh = worker.ssh
    const via = ssh.bastion ? await this.bastion(worker, ssh.bastion) : undefined
    const address = dialAddress(worker)
    const target: SshTarget = {
      host: worker.name,
      address,
      port: ssh.port,
      user: ssh.user,
      identityFile: ssh.identityFile,
      policy: ssh.hostKeyPolicy,
      knownHosts: ssh.knownHosts,
      pinned: worker.hostKey,
      connectTimeoutSeconds: ssh.connectTimeoutSeconds,
      proxy: via ? undefined : proxyForWorker(ssh.proxy, address, ssh.port, this.env),
      via,
      keepalive,
      passphrase: passphraseOf(ssh.passphraseEnv, this.env),
    }
    return connectSsh(target, this.env)
  }

  private async connect(worker: WorkerSpec): Promise<SshHost> {
    const ssh = worker.ssh
    const {client, hostKey} = await this.client(worker)
    return new SshHost(client, {
      name: worker.name,
      user: ssh.user,
      sudo: ssh.sudo,
      hostKey,
      env: this.env,
      limits: remoteLimits(ssh),
    })
  }

  /**
   * The bastion's connection. Its key is checked against the worker's knownHosts (a pinned hostKey
   * belongs to the worker, so under pinned the bastion is checked as under strict); the proxy, when
   * set, leads to the bastion. A connection is shared only by workers that would have checked it the
   * same way (policy, knownHosts, identity, proxy): a worker under strict never rides on a bastion
   * another worker accepted under accept-new, or against another file.
   */
  private async bastion(
    worker: WorkerSpec,
    bastion: ResolvedBastion,
  ): Promise<{client: Client; name: string; key: string}> {
    const ssh = worker.ssh
    const policy = ssh.hostKeyPolicy === 'pinned' ? 'strict' : ssh.hostKeyPolicy
    const proxy = proxyForWorker(ssh.proxy, bastion.address, bastion.port, this.env)
    // A hop before this one (a ProxyJump chain) is reached the same way, and carries this connection.
    const before = bastion.via ? await this.bastion(worker, bastion.via) : undefined
    const name = JSON.stringify([
      bastion.user,
      bastion.address,
      bastion.port,
      bastion.identityFile,
      policy,
      ssh.knownHosts,
      proxy ?? null,
      before?.key ?? null,
    ])
    let client = this.bastions.get(name)
    if (!client) {
      client = connectSsh(
        {
          via: before ? {client: before.client, name: before.name} : undefined,
          passphrase: passphraseOf(ssh.passphraseEnv, this.env),
          host: `bastion ${bastion.address}`,
          address: bastion.address,
          port: bastion.port,
          user: bastion.user,
          identityFile: bastion.identityFile,
          policy,
          knownHosts: ssh.knownHosts,
          pinned: null,
          connectTimeoutSeconds: ssh.connectTimeoutSeconds,
          proxy: before ? undefined : proxy,
        },
        this.env,
      ).then((c) => c.client)
      this.bastions.set(name, client)
      const forget = () => {
        if (this.bastions.get(name) === client) this.bastions.delete(name)
      }
      // A bastion connection that failed or was lost later is dialled anew by the next worker behind it.
      client.then((c) => c.once('close', forget), forget)
    }
    try {
      return {client: await client, name: bastion.address, key: name}
    } catch (error) {
      // The worker itself was never reached: its row shows the bastion's failure at the first stage.
      if (error instanceof RemoteError)
        throw new ConnectError(
          new RemoteError('SSH_BASTION_FAILED', `${worker.name}: ${error.message}`, worker.name),
          'tcp',
        )
      throw error
    }
  }
}
