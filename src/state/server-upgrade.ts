import {readFile, rm} from 'node:fs/promises'

import {writeFileAtomic} from '../util/fs-atomic.js'
import {clusterPaths, type UpgradeMarker} from './cluster-state.js'

/**
 * How `up` asks a running supervisor to move k3s to another binary (docs/architecture.md, "Upgrades"): a
 * file beside the state, which the supervisor reads every second wherever it runs (another pid namespace
 * included, where no signal reaches it). The supervisor records the request in the state (launch, settings,
 * the upgrade under way), restarts k3s on the new binary and removes the file; `up` waits for the server's
 * Node to report the new version.
 */
export interface ServerUpgradeRequest {
  /** Absolute path of the new k3s binary. */
  readonly binary: string
  /** The inventory's control-plane settings with the new spec.k3s (what the state keeps afterwards). */
  readonly settings: Readonly<Record<string, unknown>>
  readonly upgrade: UpgradeMarker
}

export async function writeUpgradeRequest(cluster: string, request: ServerUpgradeRequest): Promise<void> {
  await writeFileAtomic(clusterPaths(cluster).upgradeRequest, `${JSON.stringify(request)}\n`, 0o600)
}

/** The pending request, or undefined (none, or one still being written: it is renamed into place whole). */
export async function readUpgradeRequest(cluster: string): Promise<ServerUpgradeRequest | undefined> {
  try {
    const value = JSON.parse(await readFile(clusterPaths(cluster).upgradeRequest, 'utf8')) as ServerUpgradeRequest
    return typeof value?.binary === 'string' && value.upgrade && value.settings ? value : undefined
  } catch {
    return undefined
  }
}

export async function removeUpgradeRequest(cluster: string): Promise<void> {
  await rm(clusterPaths(cluster).upgradeRequest, {force: true})
}
