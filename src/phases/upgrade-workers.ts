import type {HostHandle, Phase} from '../plan/index.js'
import {forEachHost} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import {updateState} from '../state/cluster-state.js'
import {listWorkerRecords} from '../state/worker-records.js'
import {type ClusterContext, type InventoryInput, type UpgradeInput} from './context.js'
import {checkApiStep} from './join/check-api.js'
import {connectWorker} from './join/connect.js'
import {installServiceStep} from './join/install-service.js'
import {stepDeadlineMs} from './join/join-target.js'
import {openTunnel} from './join/open-tunnel.js'
import {startAgentStep} from './join/start-agent.js'
import {uploadK3s} from './join/upload-k3s.js'
import {waitNodeReady} from './join/wait-node.js'
import {writeAgentFilesStep} from './join/write-agent-files.js'
import {K3sDistribution} from './join/distribute-k3s.js'
import {joinRun} from './join-workers.js'
import {drainForUpgrade} from './upgrade/drain-for-upgrade.js'
import {uncordonAfterUpgradeStep} from './upgrade/uncordon-after-upgrade.js'
import type {UpgradeTarget} from './upgrade/upgrade-target.js'
import {waitNodeVersion} from './upgrade/wait-node-version.js'

/** One worker's upgrade: the join's steps, with the drain before the new binary and the uncordon after. */
const UPGRADE_STEPS: ReadonlyArray<{
  readonly title: string
  run(target: UpgradeTarget, handle: HostHandle): Promise<void>
  deadlineMs?(target: UpgradeTarget): number
}> = [
  connectWorker,
  openTunnel,
  checkApiStep,
  drainForUpgrade,
  uploadK3s,
  writeAgentFilesStep,
  installServiceStep,
  startAgentStep,
  waitNodeReady,
  waitNodeVersion,
  uncordonAfterUpgradeStep,
]

/** upgrade-workers gives: the workers the rollout left on their old k3s (a worker failed before their turn). */
export interface RolloutLeft {
  readonly notUpgraded?: readonly string[]
}

/**
 * The rollout (docs/architecture.md, "Upgrades"): after the server, every joined worker whose record is not
 * on the new version, in the inventory's order, in batches of spec.upgrade.maxUnavailable; a batch waits
 * for the one before it. A worker that fails stops the rollout after its batch: the workers after it keep
 * their old k3s and are left out of this run (skipped, with the reason), so the join that follows does not
 * give them the new binary undrained; the next `up` goes on from there. Once no worker is left behind, the
 * state's upgrade marker is cleared.
 */
export const upgradeWorkers: Phase<ClusterContext & InventoryInput & UpgradeInput, RolloutLeft> = {
  title: 'upgrade the workers',
  async run(ctx) {
    const {to} = ctx.upgrade
    const records = new Map((await listWorkerRecords(ctx.cluster)).map((r) => [r.worker, r]))
    const pending = ctx.inventory.workers.filter((w) => {
      const record = records.get(w.name)
      return record?.installed.binary !== undefined && record.k3sVersion !== to
    })
    const size = ctx.inventory.upgrade.maxUnavailable
    const batches = Array.from({length: Math.ceil(pending.length / size)}, (_, i) =>
      pending.slice(i * size, (i + 1) * size),
    )
    ctx.ledger.hosts.expect(pending.map((w) => w.name))
    const connections = new SshConnections()
    try {
      // Upgrades go a batch at a time, so each worker gets the new binary from the coordinator.
      const run = await joinRun(ctx, connections, new K3sDistribution('coordinator', ctx.inventory.k3s, pending))
      for (const [index, batch] of batches.entries()) {
        const targets = batch.map((worker): UpgradeTarget => ({
          run,
          worker,
          to,
          batch: `batch ${index + 1} of ${batches.length}`,
        }))
        const done = await forEachHost(ctx, targets, {
          name: (t) => t.worker.name,
          concurrency: size,
          steps: UPGRADE_STEPS.map((step) => ({
            title: step.title,
            run: (t: UpgradeTarget, h) => step.run(t, h),
            deadlineMs: (t: UpgradeTarget) => step.deadlineMs?.(t) ?? stepDeadlineMs(t),
          })),
          onDeadline: (t) => t.host?.close(),
        })
        if (ctx.signal.aborted) return {notUpgraded: pending.slice(index * size).map((w) => w.name)}
        if (done.length < batch.length) {
          const failed = batch.filter((w) => !done.some((t) => t.worker.name === w.name)).map((w) => w.name)
          const left = batches.slice(index + 1).flat()
          for (const w of left)
            ctx.ledger.hosts.skipped(
              w.name,
              `not upgraded: the rollout to k3s ${to} stopped at ${failed.join(', ')}; it keeps its k3s until the next \`hybrid up\``,
            )
          return {notUpgraded: [...failed, ...left.map((w) => w.name)]}
        }
      }
    } finally {
      await connections.closeAll()
    }
    // Every worker runs `to`: the upgrade is over (nothing to do under --dry-run).
    if (!ctx.dryRun) await updateState(ctx.cluster, ({upgrade: _over, ...rest}) => rest)
    return {notUpgraded: []}
  },
}
