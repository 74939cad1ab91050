import {access} from 'node:fs/promises'

/** Does anything exist at `path` (following symlinks)? */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
