import {readFile} from 'node:fs/promises'
import {networkInterfaces} from 'node:os'

/**
 * Where a cluster's supervisor lives, recorded in the state so that a hybrid run elsewhere (the host of
 * the sandbox, sharing its files) can tell: its pids are not ours to check, and its API listens in
 * another network namespace, at one of the addresses recorded here.
 */
export interface Location {
  /**
   * The pid namespace: the boot time and the start time of its init (pid 1). /proc/self/ns/pid would be
   * the obvious name, but gVisor gives every process its own number there.
   */
  readonly pidNamespace: string
  /** The machine's own IPv4 addresses (not loopback): where others reach its API. */
  readonly addresses: readonly string[]
}

export async function currentLocation(): Promise<Location> {
  return {pidNamespace: await pidNamespaceId(), addresses: ownAddresses()}
}

/** "boot 1796003133 init 6", or '' where /proc does not say. */
export async function pidNamespaceId(): Promise<string> {
  try {
    const boot = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1]
    const init = await readFile('/proc/1/stat', 'utf8')
    // Field 22 (starttime) counts from the parenthesised command name, which may itself hold spaces.
    const start = init.slice(init.lastIndexOf(')') + 2).split(' ')[19]
    return boot && start ? `boot ${boot} init ${start}` : ''
  } catch {
    return ''
  }
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
