import {accessSync, constants, statSync} from 'node:fs'
import {delimiter, join, resolve} from 'node:path'

import {UsageError} from '../errors.js'

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The absolute path `execvp` would run for `command`: as given when it contains a slash (relative to
 * `cwd`), else the first executable file on the command's own PATH.
 */
export function resolveCommand(command: string, env: NodeJS.ProcessEnv, cwd: string): string {
  if (command === '') throw new UsageError('No command given to run under the interceptor.')
  if (command.includes('/')) {
    const path = resolve(cwd, command)
    if (isExecutableFile(path)) return path
    try {
      statSync(path)
    } catch {
      throw new UsageError(`Command not found: ${command}.`)
    }
    throw new UsageError(`${command} is not an executable file.`)
  }
  for (const dir of (env.PATH ?? DEFAULT_PATH).split(delimiter)) {
    const candidate = resolve(cwd, join(dir === '' ? '.' : dir, command))
    if (isExecutableFile(candidate)) return candidate
  }
  throw new UsageError(`Command not found: ${command} (not on PATH).`)
}
