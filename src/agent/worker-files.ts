import type {Host} from '../remote/host.js'

/** A file hybrid keeps on a worker: its whole content and mode, written as root. */
export interface WorkerFile {
  readonly path: string
  readonly content: string
  readonly mode: number
}

/** Is `file` on the host as it should be (content, mode, root's)? A read: safe in a dry run. */
async function isInPlace(host: Host, file: WorkerFile): Promise<boolean> {
  const [current, stat] = await Promise.all([
    host.readFile(file.path, {sudo: true}),
    host.stat(file.path, {sudo: true}),
  ])
  return (
    current?.equals(Buffer.from(file.content)) === true &&
    stat?.type === 'file' &&
    stat.mode === file.mode &&
    stat.uid === 0
  )
}

/** Those of `files` that are not on the host as they should be (reads only: a dry run asks this). */
export async function differingFiles(host: Host, files: readonly WorkerFile[]): Promise<WorkerFile[]> {
  const inPlace = await Promise.all(files.map((file) => isInPlace(host, file)))
  return files.filter((_, i) => !inPlace[i])
}

/** Write each file whole as root (temp name beside it, mode and owner set, then renamed over it). */
export async function writeWorkerFiles(host: Host, files: readonly WorkerFile[]): Promise<void> {
  for (const file of files) await host.writeFile(file.path, file.content, {mode: file.mode, owner: '0:0', sudo: true})
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
