import type {Logger} from '../log/logger.js'
import {updateState} from '../state/cluster-state.js'
import {readUpgradeRequest, removeUpgradeRequest} from '../state/server-upgrade.js'
import type {Supervisor} from './supervisor.js'

/** How often the supervisor looks for an upgrade request from `up`. */
const POLL_MS = 1000

/**
 * The supervisor's half of an upgrade (docs/architecture.md, "Upgrades"): `up` writes a request naming the
 * new k3s binary (state/server-upgrade.ts); this records it in the state (the launch, the settings, the
 * upgrade under way: the state's writer is the supervisor) and restarts k3s on it, then removes the request.
 * A request for the binary that already runs only has its settings recorded.
 */
export class ServerUpgrades {
  private timer?: NodeJS.Timeout
  private polling?: Promise<void>
  private stopped = false

  constructor(
    private readonly cluster: string,
    private readonly supervisor: Supervisor,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.polling = this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, POLL_MS)
      })
    }
    this.timer = setTimeout(tick, POLL_MS)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.polling
  }

  private async poll(): Promise<void> {
    try {
      const request = await readUpgradeRequest(this.cluster)
      if (!request || this.stopped) return
      const launch = {...this.supervisor.launch, binary: request.binary}
      await updateState(this.cluster, (s) => ({...s, launch, settings: request.settings, upgrade: request.upgrade}))
      if (request.binary !== this.supervisor.launch.binary) {
        this.logger.info(
          {binary: request.binary, from: request.upgrade.from, to: request.upgrade.to},
          `restarting k3s on k3s ${request.upgrade.to} (was ${request.upgrade.from})`,
        )
        await this.supervisor.relaunch(launch)
      }
      await removeUpgradeRequest(this.cluster)
    } catch (error) {
      this.logger.warn({err: error}, 'could not act on the upgrade request')
    }
  }
}
