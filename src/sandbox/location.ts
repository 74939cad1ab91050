import {networkInterfaces} from 'node:os'

import {isRecordedProcess, pidNamespaceId} from '../util/processes.js'

/**
 * Where a cluster's supervisor lives, recorded in the state so that a hybrid run elsewhere (the host of
 * the sandbox, sharing its files) can tell: its pids are not ours to check, and its API listens in
 * another network namespace, at one of the addresses recorded here.
 */
export interface Location {
  /** The pid namespace (`pidNamespaceId`). */
  readonly pidNamespace: string
  /** The machine's own IPv4 addresses (not loopback): where others reach its API. */
  readonly addresses: readonly string[]
}

export async function currentLocation(): Promise<Location> {
  return {pidNamespace: await pidNamespaceId(), addresses: ownAddresses()}
}

function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address)
}

/** What isElsewhere reads of a cluster's state. */
export interface Recorded {
  readonly location?: Location
  readonly supervisor?: {readonly pid: number; readonly argv: readonly string[]}
}

/**
 * Does the cluster's supervisor live somewhere else than this process? Only when the recorded pid
 * namespace differs and the recorded supervisor is not running here (so a state written by another
 * version of hybrid, or a namespace /proc describes differently, never locks its own machine out).
 * Unknown (not recorded, /proc silent) counts as here.
 */
export async function isElsewhere(state: Recorded | undefined): Promise<boolean> {
  if (!state?.location?.pidNamespace) return false
  const here = await pidNamespaceId()
  if (here === '' || here === state.location.pidNamespace) return false
  const owner = state.supervisor
  return !(owner && (await isRecordedProcess(owner.pid, owner.argv)))
}

/** The API's URL as seen from elsewhere: the first recorded address; undefined when none was recorded. */
export function serverFromElsewhere(recorded: Location | undefined, apiPort: number): string | undefined {
  const address = recorded?.addresses[0]
  return address ? `https://${address}:${apiPort}` : undefined
}
