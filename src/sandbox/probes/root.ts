import {readFile} from 'node:fs/promises'

/** Are we root, and with which of the capabilities the workarounds need (mount, netns, ptrace)? */
export interface RootFacts {
  readonly uid: number
  readonly root: boolean
  /** mount(2), unshare(2) of a network namespace. */
  readonly capSysAdmin: boolean
  readonly capNetAdmin: boolean
  readonly capSysPtrace: boolean
}

const CAP_NET_ADMIN = 12n
const CAP_SYS_PTRACE = 19n
const CAP_SYS_ADMIN = 21n

export async function probeRoot(): Promise<RootFacts> {
  const uid = process.geteuid?.() ?? -1
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1]
  const caps = hex === undefined ? 0n : BigInt(`0x${hex}`)
  const has = (bit: bigint): boolean => ((caps >> bit) & 1n) === 1n
  return {
    uid,
    root: uid === 0,
    capSysAdmin: has(CAP_SYS_ADMIN),
    capNetAdmin: has(CAP_NET_ADMIN),
    capSysPtrace: has(CAP_SYS_PTRACE),
  }
}

export function describeRoot(facts: RootFacts): string {
  const caps = [
    facts.capSysAdmin && 'CAP_SYS_ADMIN',
    facts.capNetAdmin && 'CAP_NET_ADMIN',
    facts.capSysPtrace && 'CAP_SYS_PTRACE',
  ].filter(Boolean)
  return `${facts.root ? 'root' : `uid ${facts.uid}, not root`}${caps.length > 0 ? ` (${caps.join(', ')})` : ' (no CAP_SYS_ADMIN, CAP_NET_ADMIN or CAP_SYS_PTRACE)'}`
}
