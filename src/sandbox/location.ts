import {networkInterfaces} from 'node:os'

import {pidNamespaceId} from '../util/processes.js'

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

/** Is a recorded location somewhere else than this process? Unknown (not recorded, /proc silent) counts as here. */
export async function isElsewhere(recorded: Location | undefined): Promise<boolean> {
  if (!recorded?.pidNamespace) return false
  const here = await pidNamespaceId()
  return here !== '' && here !== recorded.pidNamespace
}

/** The API's URL as seen from elsewhere: the first recorded address; undefined when none was recorded. */
export function serverFromElsewhere(recorded: Location | undefined, apiPort: number): string | undefined {
  const address = recorded?.addresses[0]
  return address ? `https://${address}:${apiPort}` : undefined
}
