import {createHash} from 'node:crypto'
import {stat} from 'node:fs/promises'
import {basename, posix} from 'node:path'

import {HybridError, messageOf} from '../errors.js'
import type {Inventory, WorkerSpec} from '../inventory/model.js'
import type {Host} from '../remote/host.js'
import {fileSha256} from '../remote/sftp-upload.js'
import {registriesYaml} from './registries.js'
import {WORKER_PATHS} from './worker-paths.js'

/**
 * What hybrid puts on a worker for its agent beyond config, token and service (docs/architecture.md,
 * "Agent settings, registries and images"): registries.yaml (0600) from spec.registries, the agent's
 * `files`, and spec.images.archives in k3s's images dir. Each is compared by sha256 and mode and written
 * only when it differs; what hybrid wrote is recorded, so a file dropped from the inventory is removed on
 * the next run and uninstall removes exactly these.
 */

export interface ExtraFile {
  /** Where it goes on the worker. */
  readonly path: string
  readonly mode: number
  readonly sha256: string
  /** Its bytes (registries.yaml), or the local file to upload. */
  readonly content?: string
  readonly source?: string
  /** For sentences: "registries.yaml", "file", "image archive". */
  readonly what: string
}

/** A local file's sha256, computed once per run for each path, size and time (archives are large and shared). */
const digests = new Map<string, Promise<string>>()
async function localSha256(path: string, what: string): Promise<string> {
  try {
    const info = await stat(path)
    if (!info.isFile()) throw new Error('not a regular file')
    const key = `${path}\0${info.size}\0${info.mtimeMs}`
    let digest = digests.get(key)
    if (!digest) digests.set(key, (digest = fileSha256(path)))
    return await digest
  } catch (error) {
    throw new HybridError('AGENT_FILE_UNREADABLE', `cannot read the ${what} ${path}: ${messageOf(error)}`, {
      exitCode: 2,
    })
  }
}

/** Every extra file the worker should have, in the order they are written. */
export async function wantedExtras(worker: WorkerSpec, inventory: Inventory): Promise<ExtraFile[]> {
  const wanted: ExtraFile[] = []
  if (inventory.registries) {
    const content = await registriesYaml(inventory.registries)
    const sha256 = createHash('sha256').update(content).digest('hex')
    wanted.push({path: WORKER_PATHS.registries, mode: 0o600, sha256, content, what: 'registries.yaml'})
  }
  for (const file of worker.agent?.files ?? [])
    wanted.push({
      path: file.destination,
      mode: file.mode,
      sha256: await localSha256(file.source, 'file'),
      source: file.source,
      what: 'file',
    })
  for (const archive of inventory.images.archives)
    wanted.push({
      path: posix.join(WORKER_PATHS.imagesDir, basename(archive)),
      mode: 0o644,
      sha256: await localSha256(archive, 'image archive'),
      source: archive,
      what: 'image archive',
    })
  return wanted
}

/** What is at each path on the worker: sha256 and mode (octal text), absent when nothing is. */
export interface ThereNow {
  readonly sha256: string
  readonly mode: number
}

const SURVEY = `for p; do
  if [ -f "$p" ]; then echo "$(sha256sum -- "$p" | cut -d' ' -f1) $(stat -c %a -- "$p") $p"; fi
done`

/** One remote command (a read): the digest and mode of each path that holds a file. */
export async function survey(host: Host, paths: readonly string[]): Promise<Map<string, ThereNow>> {
  const found = new Map<string, ThereNow>()
  if (paths.length === 0) return found
  const result = await host.check(['sh', '-c', SURVEY, 'sh', ...paths], {sudo: true})
  for (const line of result.stdout.split('\n')) {
    const match = /^([0-9a-f]{64}) ([0-7]+) (.+)$/.exec(line)
    if (match) found.set(match[3], {sha256: match[1], mode: parseInt(match[2], 8)})
  }
  return found
}

/** Write one extra file as root: content through stdin, a local file by upload (sha256 checked there). */
export async function writeExtra(host: Host, file: ExtraFile, there: ThereNow | undefined): Promise<void> {
  if (file.content !== undefined) {
    await host.writeFile(file.path, file.content, {mode: file.mode, owner: '0:0', sudo: true})
    return
  }
  // The upload puts its temp file beside the target, whose directory may not be there yet.
  await host.check(['mkdir', '-p', '--', posix.dirname(file.path)], {sudo: true})
  await host.upload(file.source!, file.path, {
    mode: file.mode,
    owner: '0:0',
    sudo: true,
    sha256: file.sha256,
    sha256There: there?.sha256 ?? null,
  })
}
