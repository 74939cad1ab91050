import {readFile, rm} from 'node:fs/promises'

import type {TunnelHealth} from '../tunnel/api-tunnel.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {clusterPaths} from './cluster-state.js'

/**
 * The tunnels as the supervisor last saw them, in `clusters/<name>/tunnels.json`: written only by the
 * supervisor that keeps them (whole, by rename), read by `status`, `workers list` and the join steps
 * that wait for a worker's tunnel to come up.
 */
/** One tunnel's health, as the supervisor's keeper reports it. */
export type TunnelStatus = TunnelHealth

export interface TunnelsFile {
  /** The supervisor's pid: a file whose writer is gone is stale. */
  readonly pid: number
  readonly updatedAt: string
  readonly tunnels: readonly TunnelStatus[]
}

export function tunnelsFile(cluster: string): string {
  return clusterPaths(cluster).tunnels
}

export async function readTunnels(cluster: string): Promise<TunnelsFile | undefined> {
  try {
    return JSON.parse(await readFile(tunnelsFile(cluster), 'utf8')) as TunnelsFile
  } catch {
    return undefined // none yet, or gone with the cluster
  }
}

/** The supervisor is stopping: its tunnels are gone, and so is their file. */
export async function removeTunnels(cluster: string): Promise<void> {
  await rm(tunnelsFile(cluster), {force: true})
}

export async function writeTunnels(cluster: string, tunnels: readonly TunnelStatus[]): Promise<void> {
  const file: TunnelsFile = {pid: process.pid, updatedAt: new Date().toISOString(), tunnels}
  await writeFileAtomic(tunnelsFile(cluster), `${JSON.stringify(file, null, 2)}\n`, 0o600)
}
