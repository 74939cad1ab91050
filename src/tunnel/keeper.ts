import {isDeepStrictEqual} from 'node:util'

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

  /** `options.onChange` hears the changes of every tunnel held (not of one after it was let go). */
  constructor(private readonly options: TunnelOptions = {}) {}

  /** Hold a tunnel for exactly these targets (one per worker name); resolves once removed ones are closed. */
  async sync(targets: readonly TunnelTarget[]): Promise<void> {
    const wanted = new Map(targets.map((t) => [t.worker.name, t]))
    const leaving = [...this.tunnels].filter(([name, tunnel]) => {
      const target = wanted.get(name)
      return !target || !isDeepStrictEqual(connection(target), connection(tunnel.target))
    })
    for (const [name] of leaving) this.tunnels.delete(name)
    await Promise.all(leaving.map(([, tunnel]) => tunnel.stop()))
    for (const [name, target] of wanted) if (!this.tunnels.has(name)) this.tunnels.set(name, this.start(target))
  }

  private start(target: TunnelTarget): ApiTunnel {
    const onChange = this.options.onChange
    const tunnel: ApiTunnel = new ApiTunnel(target, {
      ...this.options,
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
  }
}
