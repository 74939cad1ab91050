import {isDeepStrictEqual} from 'node:util'

import {SshConnections} from '../remote/connections.js'
import {ApiTunnel, type TunnelHealth, type TunnelOptions, type TunnelTarget} from './api-tunnel.js'

/**
 * What a tunnel is made of: where it connects and how, and what it binds there. A worker's labels, taints
 * or service are not: a change of those (which restarts its agent) leaves its tunnel as it is.
 */
function connection(target: TunnelTarget) {
  const {address, ssh, hostKey} = target.worker
  return {address, ssh, hostKey, bind: [target.bindAddress, target.bindPort, target.targetPort]}
}

/**
 * The API tunnels of every worker, as the supervisor holds them beside k3s (docs/architecture.md,
 * "Tunnels"): sync() to the inventory's workers starts the missing ones, stops those no longer listed,
 * and restarts one whose connection changed; health() is what `hybrid status` shows.
 */
export class TunnelKeeper {
  private readonly tunnels = new Map<string, ApiTunnel>()
  /** Tunnels behind one bastion share its connection (one login there, not one per worker). */
  private readonly bastions: SshConnections

  /** `options.onChange` hears the changes of every tunnel held (not of one after it was let go). */
  constructor(private readonly options: TunnelOptions = {}) {
    this.bastions = options.bastions ?? new SshConnections(options.env)
  }

  /**
   * Hold a tunnel for exactly these targets (one per worker name); resolves once removed ones are closed.
   * A new worker's tunnel starts at once; one whose target changed starts once its old one let go of the
   * address on the worker. No tunnel waits for another worker's.
   */
  async sync(targets: readonly TunnelTarget[]): Promise<void> {
    const wanted = new Map(targets.map((t) => [t.worker.name, t]))
    const leaving = [...this.tunnels].filter(([name, tunnel]) => {
      const target = wanted.get(name)
      return !target || !isDeepStrictEqual(connection(target), connection(tunnel.target))
    })
    for (const [name] of leaving) this.tunnels.delete(name)
    for (const [name, target] of wanted)
      if (!this.tunnels.has(name) && !leaving.some(([gone]) => gone === name))
        this.tunnels.set(name, this.start(target))
    await Promise.all(
      leaving.map(async ([name, tunnel]) => {
        await tunnel.stop()
        const target = wanted.get(name)
        if (target && !this.tunnels.has(name)) this.tunnels.set(name, this.start(target))
      }),
    )
  }

  private start(target: TunnelTarget): ApiTunnel {
    const onChange = this.options.onChange
    const tunnel: ApiTunnel = new ApiTunnel(target, {
      ...this.options,
      bastions: this.bastions,
      onChange: onChange && ((health) => this.tunnels.get(health.worker) === tunnel && onChange(health)),
    })
    return tunnel
  }

  /** One row per tunnel, in worker-name order. */
  health(): TunnelHealth[] {
    return [...this.tunnels.values()].map((t) => t.health()).sort((a, b) => a.worker.localeCompare(b.worker))
  }

  async stopAll(): Promise<void> {
    await this.sync([])
    if (!this.options.bastions) await this.bastions.closeAll()
  }
}
