import {realpathSync} from 'node:fs'
import {delimiter, join} from 'node:path'

/**
 * How a shell reaches this hybrid, for the commands hybrid suggests (`hybrid down`, …), so that they
 * work as printed: `hybrid` when that name on PATH is this very program (scripts/setup.sh links it),
 * `npx hybrid` when npx runs it (its PATH entry goes when npx ends), else this program's own path.
 */
export function selfCommand(env: NodeJS.ProcessEnv = process.env, script = process.argv[1] ?? ''): string {
  if (env.npm_command === 'exec') return 'npx hybrid'
  const self = real(script)
  const onPath = (env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .some((dir) => self !== undefined && real(join(dir, 'hybrid')) === self)
  if (onPath) return 'hybrid'
  const path = self ?? script
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`
}

function real(path: string): string | undefined {
  try {
    return realpathSync(path)
  } catch {
    return undefined
  }
}
