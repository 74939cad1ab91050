import {mkdtemp, rm, stat} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'

import {readMountinfo, mountsUnder} from './mountinfo.js'
import {runTool, toolFailure} from './run-tool.js'

/** Scratch directories of probes are named so; each probe records the exact one it made. */
export const SCRATCH_PREFIX = '.hybrid-probe-'

/** `path` itself when it exists, else its nearest existing ancestor (where it would be created). */
export async function nearestExistingDir(path: string): Promise<string> {
  let current = resolve(path)
  for (;;) {
    try {
      if ((await stat(current)).isDirectory()) return current
    } catch {
      // missing: look further up
    }
    const parent = dirname(current)
    if (parent === current) return current
    current = parent
  }
}

/**
 * Run `fn` in a fresh directory on the filesystem the data dir is (or will be) on: inside the data dir
 * when it exists, else in its nearest existing ancestor. Afterwards anything the probe mounted below it
 * is unmounted and the directory removed, also when `fn` failed or was stopped at its time limit.
 */
export async function withScratchDir<T>(dataDir: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const base = await nearestExistingDir(dataDir)
  let dir: string
  try {
    dir = await mkdtemp(join(base, SCRATCH_PREFIX))
  } catch (error) {
    throw new Error(`cannot make a scratch dir in ${base} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
  try {
    return await fn(dir)
  } finally {
    await removeScratchDir(dir)
  }
}

/** Unmount what is mounted below `dir` (deepest first), then remove it; never removes through a mount. */
export async function removeScratchDir(dir: string): Promise<void> {
  for (const entry of mountsUnder(await readMountinfo(), dir)) {
    // Clean-up gets its own short limit: the probe's own signal may already have fired.
    const result = await runTool('umount', [entry.mountPoint], {signal: AbortSignal.timeout(10_000)})
    if (!result.ok) {
      const lazy = await runTool('umount', ['-l', entry.mountPoint], {signal: AbortSignal.timeout(10_000)})
      if (!lazy.ok) throw new Error(`cannot unmount the probe's ${entry.mountPoint}: ${toolFailure(lazy, 'umount')}`)
    }
  }
  if (mountsUnder(await readMountinfo(), dir).length > 0)
    throw new Error(`the probe's ${dir} still has a mount below it; left in place`)
  await rm(dir, {recursive: true, force: true})
}
