import {readFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {UsageError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import type {Inventory} from '../inventory/model.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {readState} from './cluster-state.js'
import {stateDir} from './paths.js'

/** The file naming the cluster `up` last brought up: commands use it when `--inventory` is omitted. */
function currentFile(): string {
  return join(stateDir(), 'current')
}

/** The cluster `up` last brought up here, or undefined when none has been. */
export async function currentCluster(): Promise<string | undefined> {
  try {
    const name = (await readFile(currentFile(), 'utf8')).trim()
    return name === '' ? undefined : name
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Remember `cluster` as the one commands act on by default. */
export async function setCurrentCluster(cluster: string): Promise<void> {
  await writeFileAtomic(currentFile(), `${cluster}\n`, 0o600)
}

/** The cluster a command acts on: the inventory's, or else the one `up` last brought up. */
export async function resolveCluster(
  inventoryFile: string | undefined,
): Promise<{cluster: string; inventory?: Inventory}> {
  if (inventoryFile) {
    const inventory = await loadInventory(resolve(inventoryFile))
    return {cluster: inventory.name, inventory}
  }
  const cluster = await currentCluster()
  if (!cluster)
    throw new UsageError(
      `no cluster has been brought up here (state dir ${stateDir()}); name one with --inventory FILE`,
    )
  return {cluster}
}

/**
 * The cluster and its inventory: the given file, else the inventory the current cluster was brought up
 * with (recorded in its state), when that file is still there. `inventory` is undefined only when neither is.
 */
export async function resolveClusterInventory(
  inventoryFile: string | undefined,
): Promise<{cluster: string; inventory?: Inventory}> {
  const resolved = await resolveCluster(inventoryFile)
  if (resolved.inventory) return resolved
  const recorded = (await readState(resolved.cluster))?.inventory
  if (!recorded) return resolved
  try {
    return {cluster: resolved.cluster, inventory: await loadInventory(recorded)}
  } catch {
    return resolved // moved or broken since: the records and the cluster still say a lot
  }
}
