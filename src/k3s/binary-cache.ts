import {randomBytes} from 'node:crypto'
import {chmod, link, mkdir, open, readFile, rename, rm, rmdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HybridError} from '../errors.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {isAlive} from '../util/processes.js'
import {sha256File} from './digest.js'

/**
 * The per-version k3s cache: `<cacheDir>/k3s/<version>/<asset>`, its sha256 recorded beside it in
 * `<asset>.sha256` (sha256sum's format). A binary counts as cached only when its record exists and the
 * file still hashes to it; downloads are written to `<asset>.partial` and renamed in only once verified.
 */
export interface CacheEntry {
  dir: string
  binary: string
  record: string
  partial: string
  /** An image layer while it is downloaded and read (the image source). */
  layer: string
  lock: string
}

export function cacheEntry(cacheRoot: string, version: string, asset: string): CacheEntry {
  const dir = join(cacheRoot, 'k3s', version)
  const binary = join(dir, asset)
  return {
    dir,
    binary,
    record: `${binary}.sha256`,
    partial: `${binary}.partial`,
    layer: `${binary}.layer.partial`,
    lock: `${binary}.lock`,
  }
}

/**
 * The cached binary's sha256 when the entry is intact (and matches `pinned`, if given), else undefined.
 * A corrupt entry (file changed since it was recorded) is removed so it is never used.
 */
export async function readCached(entry: CacheEntry, pinned?: string): Promise<string | undefined> {
  let recorded: string
  try {
    recorded = (await readFile(entry.record, 'utf8')).split(/\s+/)[0].toLowerCase()
  } catch {
    return undefined
  }
  let actual: string
  try {
    actual = await sha256File(entry.binary)
  } catch {
    return undefined
  }
  if (actual !== recorded) {
    await rm(entry.binary, {force: true})
    await rm(entry.record, {force: true})
    return undefined
  }
  if (pinned && pinned !== actual) return undefined
  return actual
}

/** Move a verified `.partial` into the cache: executable, flushed, record first so a binary never lacks one. */
export async function promote(entry: CacheEntry, asset: string, sha256: string): Promise<void> {
  await chmod(entry.partial, 0o755)
  const handle = await open(entry.partial, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
  await writeFileAtomic(entry.record, `${sha256}  ${asset}\n`, 0o644)
  await rename(entry.partial, entry.binary)
}

/** Make the version directory, or say in one sentence why it cannot be written. */
export async function ensureWritable(entry: CacheEntry, cacheRoot: string): Promise<void> {
  try {
    await mkdir(entry.dir, {recursive: true, mode: 0o755})
    const probe = join(entry.dir, `.write-test-${process.pid}`)
    await (await open(probe, 'w')).close()
    await rm(probe, {force: true})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error'
    throw new HybridError(
      'K3S_CACHE_NOT_WRITABLE',
      `The k3s cache directory ${cacheRoot} is not writable (${code}); set HYBRID_CACHE_DIR or XDG_CACHE_HOME to a writable directory, or give the binary with spec.k3s.binary: /path/to/k3s.`,
    )
  }
}

/**
 * Hold the entry's lock while downloading, so two hybrid processes never write the same `.partial`. A lock
 * whose process is gone is taken over; a live one is waited for (the other download then fills the cache).
 */
export async function withLock<T>(
  entry: CacheEntry,
  signal: AbortSignal | undefined,
  onWait: (pid: number) => void,
  fn: () => Promise<T>,
): Promise<T> {
  let waitingFor: number | undefined
  for (;;) {
    // The pid is written first and the lock made by link(), which is atomic: a lock is never seen empty.
    const mine = `${entry.lock}.${process.pid}.${randomBytes(4).toString('hex')}`
    try {
      await mkdir(entry.dir, {recursive: true}) // a failed download of another process may have removed it
      await writeFile(mine, String(process.pid), {mode: 0o644})
      await link(mine, entry.lock)
      break
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') continue // the directory went away between our steps: again
      if (code !== 'EEXIST') throw error
    } finally {
      await rm(mine, {force: true})
    }
    const text = await readFile(entry.lock, 'utf8').catch(() => undefined)
    if (text === undefined) continue // released just now: try to take it
    const holder = Number.parseInt(text, 10)
    if (!(await isAlive(holder))) {
      await rm(entry.lock, {force: true})
      continue
    }
    if (waitingFor !== holder) onWait(holder)
    waitingFor = holder
    await sleep(250, undefined, {signal})
  }
  try {
    // Whatever a dead holder left half-written is never continued: a fresh download is the only trusted one.
    await removeScratch(entry)
    return await fn()
  } finally {
    await removeScratch(entry)
    await rm(entry.lock, {force: true})
    // A failed download leaves not even its version directory (rmdir only succeeds when it is empty).
    await rmdir(entry.dir).catch(() => {})
  }
}

async function removeScratch(entry: CacheEntry): Promise<void> {
  await rm(entry.partial, {force: true})
  await rm(entry.layer, {force: true})
}
