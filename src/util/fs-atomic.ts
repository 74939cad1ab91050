import {randomBytes} from 'node:crypto'
import {link, mkdir, open, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

/**
 * Write a file so that readers see either the old content or the new, never half of it: write a temp
 * file beside it (same filesystem), fsync, then rename over. `mode` applies from creation, so a secret
 * is never world-readable, not even for a moment.
 * `exclusive`: only when `path` does not exist yet (the temp file is hard-linked, not renamed, into
 * place); throws EEXIST when it does, so of two writers racing to create it exactly one wins.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
  options: {exclusive?: boolean} = {},
): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, {recursive: true})
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', mode)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode) // the umask may have narrowed or widened nothing, but be exact
    await handle.sync()
  } catch (error) {
    await handle.close()
    await rm(tmp, {force: true})
    throw error
  }
  await handle.close()
  try {
    if (options.exclusive) await link(tmp, path)
    else await rename(tmp, path)
  } catch (error) {
    await rm(tmp, {force: true})
    throw error
  }
  if (options.exclusive) await rm(tmp, {force: true}) // the content stays, under `path`
  await syncDirectory(dir)
}

/**
 * fsync a directory, so that a rename in it survives a power loss or a crash of the machine (the file's
 * own fsync does not cover its name). Filesystems that cannot fsync a directory refuse: that is tolerated.
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF')
      throw error
  } finally {
    await handle?.close()
  }
}
