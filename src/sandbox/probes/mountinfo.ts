import {readFile} from 'node:fs/promises'
import {resolve, sep} from 'node:path'

/**
 * /proc/self/mountinfo (proc(5)), parsed in one place for every reader: the probes, the workarounds, and
 * the clean-up of a data dir (nothing is removed through a mount).
 */

/** One line of mountinfo: what its readers need of it. */
export interface MountEntry {
  readonly id: number
  readonly parent: number
  /** "major:minor" of the filesystem's device; major 0 is an anonymous device (9p, tmpfs, overlay, …). */
  readonly device: string
  /** The directory of the filesystem that is mounted here ("/null" for a bind of /dev/null on a devtmpfs). */
  readonly root: string
  readonly mountPoint: string
  readonly fsType: string
  readonly source: string
}

/**
 * The kernel writes a space, tab, newline and backslash in a path as an octal escape (\040, \011, \012,
 * \134); one pass, so an escaped backslash followed by digits stays a backslash and digits.
 */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const fields = line.split(' ')
    const dash = fields.indexOf('-', 6)
    if (dash === -1 || fields.length < dash + 3) continue
    entries.push({
      id: Number(fields[0]),
      parent: Number(fields[1]),
      device: fields[2],
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      fsType: fields[dash + 1],
      source: unescapeMountField(fields[dash + 2]),
    })
  }
  return entries
}

export async function readMountinfo(): Promise<MountEntry[]> {
  try {
    return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'))
  } catch {
    return []
  }
}

function isUnder(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir + sep)
}

/** The mount `path` lives on: the longest mount point above it; of stacked mounts, the last (topmost). */
export function mountContaining(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  const target = resolve(path)
  let best: MountEntry | undefined
  for (const entry of entries) {
    if (!isUnder(target, entry.mountPoint)) continue
    if (!best || entry.mountPoint.length >= best.mountPoint.length) best = entry
  }
  return best
}

/** The mounts exactly at `path`, bottom first (mountinfo lists them in mount order). */
export function mountsAt(entries: readonly MountEntry[], path: string): MountEntry[] {
  const target = resolve(path)
  return entries.filter((e) => e.mountPoint === target)
}

/** Mounts at or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(entries: readonly MountEntry[], dir: string): MountEntry[] {
  const root = resolve(dir)
  return entries.filter((e) => isUnder(e.mountPoint, root) && root !== '/').reverse()
}
