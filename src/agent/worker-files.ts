import type {Host} from '../remote/host.js'

/** A file hybrid keeps on a worker: its whole content and mode, written as root. */
export interface WorkerFile {
  readonly path: string
  readonly content: string
  readonly mode: number
}

/**
 * Make `file` so on the host: read and stat first, and write (temp name, then rename) only when the
 * content or the mode differ, so a repeated run changes nothing. True when it wrote.
 */
export async function ensureFile(host: Host, file: WorkerFile): Promise<boolean> {
  const [current, stat] = await Promise.all([
    host.readFile(file.path, {sudo: true}),
    host.stat(file.path, {sudo: true}),
  ])
  const same =
    current?.equals(Buffer.from(file.content)) && stat?.type === 'file' && stat.mode === file.mode && stat.uid === 0
  if (same) return false
  await host.writeFile(file.path, file.content, {mode: file.mode, owner: '0:0', sudo: true})
  return true
}

/** Make every file so; true when any was written. All are written (no short-circuit). */
export async function ensureFiles(host: Host, files: readonly WorkerFile[]): Promise<boolean> {
  let changed = false
  for (const file of files) changed = (await ensureFile(host, file)) || changed
  return changed
}

/** Remove paths (files or whole directories) as root; absent ones are fine. */
export async function removePaths(host: Host, paths: readonly string[]): Promise<void> {
  if (paths.length > 0) await host.check(['rm', '-rf', '--one-file-system', '--', ...paths], {sudo: true})
}

/** The lines a log command printed as root ([] when it failed: no log yet). */
export async function logLines(host: Host, argv: readonly string[]): Promise<string[]> {
  const result = await host.run(argv, {sudo: true})
  return result.exitCode === 0 ? result.stdout.split('\n').filter(Boolean) : []
}
