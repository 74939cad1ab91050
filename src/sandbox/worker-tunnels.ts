import type {Logger} from '../log/logger.js'
import {removeTunnels, writeTunnels} from '../state/tunnel-status.js'
import {listWorkerRecords} from '../state/worker-records.js'
import type {TunnelHealth, TunnelTarget} from '../tunnel/api-tunnel.js'
import {TunnelKeeper} from '../tunnel/keeper.js'

/** How often the supervisor reads the worker records for tunnels to open or close (a join waits on it). */
const POLL_MS = 300

/**
 * The supervisor's half of the tunnels (docs/architecture.md, "Tunnels"): the worker records say which
 * tunnels the cluster needs (the join and leave steps write them); this keeps exactly those, beside k3s,
 * for as long as the supervisor lives, and writes their health to tunnels.json for `status` and for the
 * join steps that wait for a tunnel to come up.
 */
export class WorkerTunnels {
  private readonly keeper: TunnelKeeper
  private timer?: NodeJS.Timeout
  private polling?: Promise<void>
  private stopped = false
  private written = ''
  /** Writes of tunnels.json, one after another (stop waits for the last before removing the file). */
  private writing: Promise<void> = Promise.resolve()

  constructor(
    private readonly cluster: string,
    private readonly logger: Logger,
  ) {
    this.keeper = new TunnelKeeper({onChange: (health) => this.changed(health)})
  }

  start(): void {
    const tick = () => {
      this.polling = this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, POLL_MS)
      })
    }
    tick()
  }

  /** Close every tunnel (the listeners on the workers go with their connections), and remove tunnels.json. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.polling
    await this.keeper.stopAll()
    await this.writing
    await removeTunnels(this.cluster)
  }

  private async poll(): Promise<void> {
    try {
      const records = await listWorkerRecords(this.cluster, (moved) =>
        this.logger.warn(
          {worker: moved.worker, movedTo: moved.movedTo},
          `the record of worker ${moved.worker} was unusable (${moved.reason}), so it was moved aside to ${moved.movedTo}; its tunnel is no longer kept`,
        ),
      )
      const targets: TunnelTarget[] = records.flatMap((r) =>
        r.tunnel
          ? [
              {
                worker: r.spec,
                bindAddress: r.tunnel.bindAddress,
                bindPort: r.tunnel.bindPort,
                targetPort: r.tunnel.targetPort,
              },
            ]
          : [],
      )
      if (!this.stopped) await this.keeper.sync(targets)
      await this.write()
    } catch (error) {
      this.logger.warn({err: error}, 'could not bring the API tunnels in line with the worker records')
    }
  }

  private changed(health: TunnelHealth): void {
    if (this.stopped) return
    const fields = {worker: health.worker, reconnects: health.reconnects}
    if (health.state === 'up') this.logger.info(fields, `the API tunnel to ${health.worker} is up`)
    else if (health.state === 'down')
      this.logger.warn(fields, health.lastError ?? `the API tunnel to ${health.worker} is down`)
    void this.write()
  }

  /** tunnels.json, rewritten when it would change. */
  private write(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (this.stopped) return
      const tunnels = this.keeper.health()
      const text = JSON.stringify(tunnels)
      if (text === this.written) return
      this.written = text
      await writeTunnels(this.cluster, tunnels).catch((error: unknown) =>
        this.logger.warn({err: error}, 'could not write the tunnels file'),
      )
    })
    return this.writing
  }
}
