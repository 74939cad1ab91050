import {type FSWatcher, watch} from 'node:fs'
import {basename} from 'node:path'

import type {Logger} from '../log/logger.js'
import {clusterPaths} from '../state/cluster-state.js'
import {removeTunnels, writeTunnels} from '../state/tunnel-status.js'
import {listWorkerRecords, type RecordCache} from '../state/worker-records.js'
import type {TunnelHealth, TunnelTarget} from '../tunnel/api-tunnel.js'
import {TunnelKeeper} from '../tunnel/keeper.js'

/**
 * How soon after a change in the workers directory the records are read (a burst of writes, locks and
 * renames of one join step becomes one read; a join waits on it).
 */
const SETTLE_MS = 25
/**
 * How often the records are looked at without being told (a writer whose changes the watch does not see,
 * e.g. on another kernel sharing the files), and the connection counts written to tunnels.json.
 */
const SAFETY_POLL_MS = 5000

/**
 * The supervisor's half of the tunnels (docs/architecture.md, "Tunnels"): the worker records say which
 * tunnels the cluster needs (the join and leave steps write them); this keeps exactly those, beside k3s,
 * for as long as the supervisor lives, and writes their health to tunnels.json for `status` and for the
 * join steps that wait for a tunnel to come up. It watches the workers directory and reads only the
 * records that changed, so at rest it costs nothing per worker but a stat every few seconds.
 */
export class WorkerTunnels {
  private readonly keeper: TunnelKeeper
  private readonly cache: RecordCache = new Map()
  private readonly watchers = new Map<string, FSWatcher>()
  private settle?: NodeJS.Timeout
  private safety?: NodeJS.Timeout
  private polling: Promise<void> = Promise.resolve()
  private queued = false
  private stopped = false
  private written = ''
  /** Workers whose record files the watch saw change since the last read; 'all' when it cannot say. */
  private changedRecords: Set<string> | 'all' = 'all'
  /** Writes of tunnels.json, one after another (stop waits for the last before removing the file). */
  private writing: Promise<void> = Promise.resolve()

  constructor(
    private readonly cluster: string,
    private readonly logger: Logger,
  ) {
    this.keeper = new TunnelKeeper({onChange: (health) => this.changed(health)})
  }

  start(): void {
    this.watchRecords()
    this.schedule(0)
    this.safety = setInterval(() => {
      this.watchRecords()
      this.changedRecords = 'all'
      this.schedule(0)
    }, SAFETY_POLL_MS)
  }

  /** Close every tunnel (the listeners on the workers go with their connections), and remove tunnels.json. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.settle)
    clearInterval(this.safety)
    for (const watcher of this.watchers.values()) watcher.close()
    this.watchers.clear()
    await this.polling
    await this.keeper.stopAll()
    await this.writing
    await removeTunnels(this.cluster)
  }

  /**
   * Watch the workers directory, or, while it does not exist yet (no worker joined), the cluster's
   * directory for it to appear. A watch that fails is dropped; the safety poll sets it up again.
   */
  private watchRecords(): void {
    const {dir, workers} = clusterPaths(this.cluster)
    const add = (path: string, onEvent: (file: string | null) => void): boolean => {
      if (this.watchers.has(path)) return true
      try {
        const watcher = watch(path, {persistent: false}, (_event, file) => onEvent(file))
        watcher.on('error', () => {
          watcher.close()
          this.watchers.delete(path)
        })
        this.watchers.set(path, watcher)
        return true
      } catch {
        return false
      }
    }
    const recordChanged = (file: string | null) => {
      // A record is only ever replaced by a rename onto `<worker>.json`, or removed: other names (locks,
      // temp files) need no read. A watch that names no file may mean any.
      if (file !== null && !file.endsWith('.json')) return
      if (file === null) this.changedRecords = 'all'
      else if (this.changedRecords !== 'all') this.changedRecords.add(file.slice(0, -'.json'.length))
      this.schedule(SETTLE_MS)
    }
    if (add(workers, recordChanged)) return
    add(dir, (file) => {
      if (file !== basename(workers)) return
      this.watchRecords()
      this.changedRecords = 'all'
      this.schedule(SETTLE_MS)
    })
  }

  /** Read the records soon; many calls before that read become one. */
  private schedule(delay: number): void {
    if (this.stopped || this.settle) return
    this.settle = setTimeout(() => {
      this.settle = undefined
      if (this.queued) return
      this.queued = true
      this.polling = this.polling.then(() => {
        this.queued = false
        return this.poll()
      })
    }, delay)
  }

  private async poll(): Promise<void> {
    if (this.stopped) return
    const changed = this.changedRecords
    this.changedRecords = new Set()
    try {
      const records = await listWorkerRecords(
        this.cluster,
        (moved) =>
          this.logger.warn(
            {worker: moved.worker, movedTo: moved.movedTo},
            `the record of worker ${moved.worker} was unusable (${moved.reason}), so it was moved aside to ${moved.movedTo}; its tunnel is no longer kept`,
          ),
        this.cache,
        changed === 'all' ? undefined : changed,
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
      this.changedRecords = 'all'
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

  /**
   * tunnels.json, rewritten when it would change: at once when a tunnel's state changes, and with the
   * records read by the safety poll otherwise (the counts of connections carried).
   */
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
