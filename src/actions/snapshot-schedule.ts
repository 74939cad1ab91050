import {messageOf} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import type {Logger} from '../log/logger.js'
import {SshConnections} from '../remote/connections.js'
import {takeSnapshot} from '../snapshot/take.js'
import type {ClusterPaths} from '../state/cluster-state.js'
import {withDeadline} from '../util/abort.js'

/** The snapshot on the way out (`down`) must end well inside the 45 s `down` gives the supervisor. */
const FINAL_SNAPSHOT_MS = 30_000

export interface SnapshotSchedule {
  /** Stop the interval, then take the last snapshot (bounded); never throws. */
  final(): Promise<void>
  /** Stop the interval only (k3s died: its datastore is the last snapshot's or newer, but k3s gave up). */
  stop(): void
}

/**
 * The supervisor's snapshots (docs/architecture.md, "Snapshots and restore"): one every
 * spec.controlPlane.snapshots.every while k3s runs, one at a time, and one more when it is asked to stop.
 * A snapshot that fails is a warning: the cluster goes on.
 */
export function startSnapshotSchedule(ctx: {
  readonly inventory: Inventory
  readonly paths: ClusterPaths
  readonly logger: Logger
}): SnapshotSchedule {
  const settings = ctx.inventory.controlPlane.snapshots
  if (!settings) return {final: async () => {}, stop: () => {}}
  let running: Promise<void> = Promise.resolve()
  const take = (why: string) => {
    running = running.then(async () => {
      const connections = new SshConnections()
      try {
        const taken = await takeSnapshot(ctx.inventory, ctx.paths, connections, ctx.logger)
        const stored = taken.copies.filter((c) => c.path).map((c) => c.worker)
        const failed = taken.copies.filter((c) => c.error)
        ctx.logger.info(`snapshot ${taken.manifest.id} (${why}, ${taken.bytes} bytes) stored on ${stored.join(', ')}`)
        for (const f of failed) ctx.logger.warn(`snapshot ${taken.manifest.id} not stored on ${f.worker}: ${f.error}`)
      } catch (error) {
        ctx.logger.warn(`the ${why} snapshot failed: ${messageOf(error)}`)
      } finally {
        await connections.closeAll()
      }
    })
    return running
  }
  const timer = setInterval(() => void take('scheduled'), settings.everySeconds * 1000)
  timer.unref()
  return {
    stop: () => clearInterval(timer),
    async final() {
      clearInterval(timer)
      await withDeadline(take('last, on stop'), FINAL_SNAPSHOT_MS, () => new Error('not within 30 s')).catch((error) =>
        ctx.logger.warn(`the last snapshot did not finish: ${messageOf(error)}`),
      )
    },
  }
}
