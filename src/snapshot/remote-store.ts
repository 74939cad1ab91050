import {createHash, randomBytes} from 'node:crypto'

import {messageOf} from '../errors.js'
import type {Host} from '../remote/host.js'
import {HEADER_LIMIT, peekManifest, type SnapshotManifest} from './sealed.js'

/**
 * Snapshots on a worker: one root-owned directory per cluster under hybrid's own directory, one 0600 file
 * per snapshot named by its id. Only files named like hybrid's snapshots are ever listed or removed.
 */
export const SNAPSHOT_ROOT = '/var/lib/rancher/hybrid/snapshots'
const NAME = /^(\d{8}T\d{6}Z-[0-9a-f]{6})\.snapshot$/

export function snapshotDir(cluster: string): string {
  return `${SNAPSHOT_ROOT}/${cluster}`
}

export function snapshotPath(cluster: string, id: string): string {
  return `${snapshotDir(cluster)}/${id}.snapshot`
}

/** A new id: the UTC time to the second, then random hex (so two in one second differ); sorts by time. */
export function newSnapshotId(now = new Date()): string {
  const time = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${time}-${randomBytes(3).toString('hex')}`
}

export function isSnapshotId(id: string): boolean {
  return NAME.test(`${id}.snapshot`)
}

/** One snapshot file on a worker, as its unauthenticated header describes it (or why it could not be read). */
export interface StoredSnapshot {
  readonly worker: string
  readonly id: string
  readonly path: string
  readonly bytes: number
  readonly manifest?: SnapshotManifest
  /** The header could not be read: the file is not a snapshot, or is damaged. */
  readonly problem?: string
}

/**
 * Write a snapshot (temp name, size and sha256 checked there, rename: Host.writeFile), read its sha256 back
 * as a second check, then remove the oldest beyond `keep`. Returns the path and the digest read back.
 */
export async function storeSnapshot(
  host: Host,
  cluster: string,
  id: string,
  bytes: Buffer,
  keep: number,
): Promise<{path: string; sha256: string; removed: string[]}> {
  const path = snapshotPath(cluster, id)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  await host.check(['mkdir', '-p', '-m', '700', '--', snapshotDir(cluster)], {sudo: true})
  await host.writeFile(path, bytes, {mode: 0o600, sudo: true})
  const readBack = /^[0-9a-f]{64}/.exec((await host.check(['sha256sum', '--', path], {sudo: true})).stdout)?.[0]
  if (readBack !== sha256) {
    await host.run(['rm', '-f', '--', path], {sudo: true})
    throw new Error(
      `${host.name}: the snapshot read back from ${path} has sha256 ${readBack}, not ${sha256}; it was removed`,
    )
  }
  const stored = await listOn(host, cluster)
  const old = stored
    .map((s) => s.id)
    .sort()
    .reverse()
    .slice(keep)
  if (old.length > 0) await host.check(['rm', '-f', '--', ...old.map((o) => snapshotPath(cluster, o))], {sudo: true})
  return {path, sha256, removed: old}
}

/**
 * The snapshots of `cluster` on a worker, newest first, each with its size and the manifest read from its
 * first bytes; one command whatever their number.
 */
export async function listOn(host: Host, cluster: string, timeoutSeconds?: number): Promise<StoredSnapshot[]> {
  const program = [
    '[ -d "$1" ] || exit 0',
    'for f in "$1"/*.snapshot; do',
    '  [ -f "$f" ] || continue',
    `  printf '%s %s ' "$(basename -- "$f")" "$(wc -c < "$f" | tr -d ' ')"`,
    `  head -c ${HEADER_LIMIT + 64} -- "$f" | base64 | tr -d '\\n'`,
    '  echo',
    'done',
  ].join('\n')
  const result = await host.check(['sh', '-c', program, 'sh', snapshotDir(cluster)], {sudo: true, timeoutSeconds})
  const found: StoredSnapshot[] = []
  for (const line of result.stdout.split('\n')) {
    const [name, size, head] = line.trim().split(' ')
    const id = NAME.exec(name ?? '')?.[1]
    if (!id) continue
    const path = snapshotPath(cluster, id)
    const where = `${host.name}:${id}`
    try {
      found.push({
        worker: host.name,
        id,
        path,
        bytes: Number(size),
        manifest: peekManifest(Buffer.from(head ?? '', 'base64'), where),
      })
    } catch (error) {
      found.push({worker: host.name, id, path, bytes: Number(size), problem: messageOf(error)})
    }
  }
  return found.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
}

/** The whole snapshot file (bounded by the host's output cap). */
export async function fetchSnapshot(host: Host, cluster: string, id: string): Promise<Buffer | undefined> {
  return host.readFile(snapshotPath(cluster, id), {sudo: true})
}
