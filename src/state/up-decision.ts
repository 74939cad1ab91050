import {readFile} from 'node:fs/promises'

import {parse} from 'yaml'

import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {serverConfigPath} from '../k3s/server-config.js'
import {readState} from './cluster-state.js'
import {ownerAlive} from './owner.js'
import {changedSettings, controlPlaneSettings} from './settings.js'

/**
 * What `up` has to do, from the state alone and changing nothing: `already-up` when a live owner runs the
 * cluster exactly as the inventory says; `bring-up` when nothing runs it (leftovers of a crash included,
 * which the plan undoes first); `restart` when it runs as the inventory says but its k3s server was
 * started without an agent token of its own (by an older hybrid): stopped as `down` stops it, then brought
 * up again, so that its workers move to the agent token. A live cluster with other settings is refused:
 * `down` first.
 */
export type UpDecision = 'already-up' | 'bring-up' | 'restart' | 'upgrade'

/**
 * `upgrade`: a live cluster whose settings differ in spec.k3s only (another version or binary), or one whose
 * upgrade is still under way (a rollout that stopped at a failed worker): the server moves to the
 * inventory's k3s, then the workers (docs/architecture.md, "Upgrades").
 */
export async function upDecision(inventory: Inventory): Promise<UpDecision> {
  const state = await readState(inventory.name)
  if (!state || !(await ownerAlive(state))) return 'bring-up'
  const changed = changedSettings(state.settings, controlPlaneSettings(inventory))
  if (changed.length > 0 && changed.every((path) => path.startsWith('k3s.'))) return 'upgrade'
  if (changed.length === 0 && state.upgrade) return 'upgrade'
  if (changed.length > 0)
    throw new HybridError(
      'CLUSTER_SETTINGS_CHANGED',
      `cluster ${inventory.name} is up with other settings (${changed.join(', ')} changed); \`hybrid down\`, then \`hybrid up\`, applies them`,
    )
  return (await runsWithAgentToken(inventory.controlPlane.dataDir)) ? 'already-up' : 'restart'
}

/** Does the running server's config.yaml name an agent token file? (Unreadable: assume it does; change nothing.) */
async function runsWithAgentToken(dataDir: string): Promise<boolean> {
  try {
    const config = parse(await readFile(serverConfigPath(dataDir), 'utf8')) as Record<string, unknown> | null
    return typeof config?.['agent-token-file'] === 'string'
  } catch {
    return true
  }
}
