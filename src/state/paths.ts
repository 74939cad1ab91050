import {homedir} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'

/** `~` and `~/x` become the user's home; everything else is left as it is. */
export function expandHome(path: string): string {
  if (path === '~') return homedir()
  if (path.startsWith('~/')) return join(homedir(), path.slice(2))
  return path
}

/** A path from a file (an inventory): `~` expanded, relative paths taken from `baseDir`. */
export function resolveFrom(baseDir: string, path: string): string {
  const expanded = expandHome(path)
  return isAbsolute(expanded) ? expanded : resolve(baseDir, expanded)
}

function xdg(variable: string, fallback: string): string {
  const value = process.env[variable]
  return value && isAbsolute(value) ? value : join(homedir(), fallback)
}

/** Where hybrid keeps what it applied, its logs and its pidfiles: `$XDG_STATE_HOME/hybrid`. */
export function stateDir(): string {
  return process.env.HYBRID_STATE_DIR ?? join(xdg('XDG_STATE_HOME', '.local/state'), 'hybrid')
}

/** Where downloaded k3s binaries are kept, per version: `$XDG_CACHE_HOME/hybrid`. */
export function cacheDir(): string {
  return process.env.HYBRID_CACHE_DIR ?? join(xdg('XDG_CACHE_HOME', '.cache'), 'hybrid')
}
