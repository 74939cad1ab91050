import {HybridError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {readState} from './cluster-state.js'
import {ownerAlive} from './owner.js'
import {changedSettings, controlPlaneSettings} from './settings.js'

/**
 * What `up` has to do, from the state alone and changing nothing: `already-up` when a live owner runs the
 * cluster exactly as the inventory says; `bring-up` when nothing runs it (leftovers of a crash included,
 * which the plan undoes first). A live cluster with other settings is refused: `down` first.
 */
export async function upDecision(inventory: Inventory): Promise<'already-up' | 'bring-up'> {
  const state = await readState(inventory.name)
  if (!state || !(await ownerAlive(state))) return 'bring-up'
  const changed = changedSettings(state.settings, controlPlaneSettings(inventory))
  if (changed.length === 0) return 'already-up'
  throw new HybridError(
    'CLUSTER_SETTINGS_CHANGED',
    `cluster ${inventory.name} is up with other settings (${changed.join(', ')} changed); \`hybrid down\`, then \`hybrid up\`, applies them`,
  )
}
