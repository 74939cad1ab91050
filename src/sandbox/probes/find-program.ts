import {accessSync, constants} from 'node:fs'
import {delimiter, join} from 'node:path'

// Tools such as iptables live in sbin, which a non-root PATH often lacks.
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The first executable `name` on PATH, then in the system's sbin/bin dirs; undefined when none. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | undefined {
  const dirs = new Set([...path.split(delimiter), ...SYSTEM_PATH.split(delimiter)].filter((d) => d !== ''))
  for (const dir of dirs) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
