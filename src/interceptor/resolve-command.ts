import {statSync} from 'node:fs'
import {delimiter, resolve} from 'node:path'

import which from 'which'

import {UsageError} from '../errors.js'

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * The absolute path `execvp` would run for `command`: as given when it contains a slash (relative to
 * `cwd`), else the first executable file on the command's own PATH.
 */
export function resolveCommand(command: string, env: NodeJS.ProcessEnv, cwd: string): string {
  if (command === '') throw new UsageError('No command given to run under the interceptor.')
  if (command.includes('/')) {
    const path = resolve(cwd, command)
    if (which.sync(path, {nothrow: true})) return path
    try {
      statSync(path)
    } catch {
      throw new UsageError(`Command not found: ${command}.`)
    }
    throw new UsageError(`${command} is not an executable file.`)
  }
  // PATH entries are taken relative to the command's working directory (an empty one is that directory).
  const path = (env.PATH ?? DEFAULT_PATH)
    .split(delimiter)
    .map((dir) => resolve(cwd, dir))
    .join(delimiter)
  const found = which.sync(command, {path, nothrow: true})
  if (found) return found
  throw new UsageError(`Command not found: ${command} (not on PATH).`)
}
