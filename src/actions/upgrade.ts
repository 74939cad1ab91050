import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {compareK3sVersions} from '../k3s/versions.js'
import {type HostOutcome, Plan, type PlanResult, runPlan} from '../plan/index.js'
import {acquireK3sBinary} from '../phases/acquire-k3s.js'
import {applyCni} from '../phases/apply-cni.js'
import {type ClusterContext, type InventoryInput, type UpgradeInput} from '../phases/context.js'
import {forgetRemovedNodesPhase} from '../phases/forget-removed-nodes.js'
import {joinWorkers} from '../phases/join-workers.js'
import {makeCurrent} from '../phases/make-current.js'
import {snapshotBeforeUpgrade} from '../phases/snapshot-before-upgrade.js'
import {upgradeServer} from '../phases/upgrade-server.js'
import {upgradeWorkers} from '../phases/upgrade-workers.js'
import {readState} from '../state/cluster-state.js'
import {planError} from './plan-error.js'

/**
 * An upgrade of a running cluster (docs/architecture.md, "Upgrades"): the server first (a snapshot before,
 * when snapshots are configured), then the workers in batches, then whatever the join still has to do
 * (new workers join on the new k3s; those the rollout left behind are out of this run).
 */
export const UPGRADE = Plan.start<ClusterContext & InventoryInput & UpgradeInput>()
  .then(acquireK3sBinary)
  .then(snapshotBeforeUpgrade)
  .then(upgradeServer)
  .then(makeCurrent)
  .then(forgetRemovedNodesPhase)
  .then(applyCni)
  .then(upgradeWorkers)
  .then(joinWorkers)

/**
 * From which version to which: the state's settings say what runs (or the upgrade under way, when a
 * rollout stopped), the inventory what should. A downgrade is refused (exit 2) unless allowed: k3s's
 * datastore and its manifests are not meant to go back.
 */
export async function upgradeOf(inventory: Inventory, allowDowngrade: boolean): Promise<UpgradeInput['upgrade']> {
  const state = await readState(inventory.name)
  const stored = (state?.settings.k3s as {version?: string} | undefined)?.version
  const from = state?.upgrade && state.upgrade.to === stored ? state.upgrade.from : (stored ?? inventory.k3s.version)
  const to = inventory.k3s.version
  const runs = stored ?? from
  const order = compareK3sVersions(to, runs)
  if (order !== undefined && order < 0 && !allowDowngrade)
    throw new HybridError(
      'K3S_DOWNGRADE_REFUSED',
      `cluster ${inventory.name} runs k3s ${runs}, and the inventory (${inventory.file}) asks for the older ${to}: a downgrade is refused; set spec.k3s.version back to ${runs}, or run \`hybrid up --allow-downgrade\` if you mean it`,
      {exitCode: 2},
    )
  return {from, to}
}

/** What --json prints with the error when the rollout stopped (the whole result, as for a partly done join). */
export class RolloutStopped extends HybridError {
  constructor(
    readonly result: Record<string, unknown>,
    upgrade: UpgradeInput['upgrade'],
    hosts: readonly HostOutcome[],
    left: readonly string[],
  ) {
    const failed = hosts.filter((h) => h.status === 'failed')
    const first = failed[0]
    const stillOld = left.filter((name) => !failed.some((f) => f.host === name))
    const why = first ? `${first.host} failed: ${first.error}` : 'it was interrupted'
    const rest = stillOld.length > 0 ? `; ${stillOld.join(', ')} keep${stillOld.length === 1 ? 's' : ''} their k3s` : ''
    super(
      'PARTLY_DONE',
      `the upgrade to k3s ${upgrade.to} stopped (${why})${rest}; the server runs ${upgrade.to}; \`hybrid up\` again goes on from there`,
      {exitCode: 3},
    )
    this.name = 'RolloutStopped'
  }

  override jsonDocument(): Record<string, unknown> {
    return {...this.result, error: this.toJSON()}
  }
}

/** Run the upgrade plan; a plan that failed (the server did not come back) is that phase's error. */
export async function runUpgrade(
  ctx: ClusterContext & InventoryInput & UpgradeInput,
): Promise<{result: PlanResult; notUpgraded: readonly string[]}> {
  const result = await runPlan(UPGRADE, ctx)
  if (result.status !== 'done') throw planError(result, '`hybrid up`')
  const out = ctx as Partial<{notUpgraded: readonly string[]}>
  return {result, notUpgraded: out.notUpgraded ?? []}
}
