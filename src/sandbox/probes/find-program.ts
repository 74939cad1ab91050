import {delimiter} from 'node:path'

import which from 'which'

// Tools such as iptables live in sbin, which a non-root PATH often lacks.
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The first executable file `name` on PATH, then in the system's sbin/bin dirs; undefined when none. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | undefined {
  return which.sync(name, {path: [path, SYSTEM_PATH].join(delimiter), nothrow: true}) ?? undefined
}
