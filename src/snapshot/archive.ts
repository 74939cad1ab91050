import {cp, mkdir, mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import Database from 'better-sqlite3'
import {create, extract} from 'tar'

import {HybridError, messageOf} from '../errors.js'
import {agentTokenSecretPath, serverConfigPath} from '../k3s/server-config.js'
import type {ClusterPaths} from '../state/cluster-state.js'
import {pathExists} from '../util/path-exists.js'

/**
 * What a snapshot holds, as a tar (docs/architecture.md, "Snapshots and restore"):
 *   k3s/server/db/state.db      kine's datastore, a consistent copy taken with SQLite's online backup API
 *   k3s/server/{tls,cred}/…     the CAs, certificates and keys, k3s's credentials
 *   k3s/server/{token,node-token,agent-token}, k3s/hybrid-agent-token, k3s/config.yaml
 *   hybrid/state.json, hybrid/workers/*.json, hybrid/removed-nodes.json
 * paths relative to the data dir (k3s/) and to the cluster's state directory (hybrid/).
 */

/** kine's sqlite file under the data dir. */
export function datastorePath(dataDir: string): string {
  return join(dataDir, 'server', 'db', 'state.db')
}

/** Files and directories copied as they are, relative to the data dir. */
function dataDirEntries(dataDir: string): string[] {
  const relative = (path: string) => path.slice(dataDir.length + 1)
  return [
    'server/tls',
    'server/cred',
    'server/token',
    'server/node-token',
    'server/agent-token',
    relative(agentTokenSecretPath(dataDir)),
    relative(serverConfigPath(dataDir)),
  ]
}

/** A private directory for the archive's files, removed by the caller. */
async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'hybrid-snapshot-'))
}

/** Build the archive of a running cluster: the datastore copied while k3s writes it, the rest as files. */
export async function buildArchive(dataDir: string, paths: ClusterPaths): Promise<Buffer> {
  const db = datastorePath(dataDir)
  if (!(await pathExists(db)))
    throw new HybridError('SNAPSHOT_FAILED', `there is no datastore at ${db} to take a snapshot of (is k3s up?)`)
  const dir = await scratch()
  try {
    await mkdir(join(dir, 'k3s', 'server', 'db'), {recursive: true})
    await mkdir(join(dir, 'hybrid'), {recursive: true})
    await backupDatastore(db, join(dir, 'k3s', 'server', 'db', 'state.db'))
    for (const entry of dataDirEntries(dataDir)) await copyIfThere(join(dataDir, entry), join(dir, 'k3s', entry))
    await copyIfThere(paths.state, join(dir, 'hybrid', 'state.json'))
    await copyIfThere(paths.workers, join(dir, 'hybrid', 'workers'), (name) => name.endsWith('.json'))
    await copyIfThere(join(paths.dir, 'removed-nodes.json'), join(dir, 'hybrid', 'removed-nodes.json'))
    const chunks: Buffer[] = []
    const stream = create({cwd: dir, gzip: true, portable: true}, ['k3s', 'hybrid'])
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk)
    return Buffer.concat(chunks)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/** SQLite's online backup: the pages of one consistent read, the WAL's committed frames included. */
async function backupDatastore(from: string, to: string): Promise<void> {
  let db: Database | undefined
  try {
    db = new Database(from, {fileMustExist: true, timeout: 5000})
    await db.backup(to)
  } catch (error) {
    throw new HybridError('SNAPSHOT_FAILED', `cannot copy the datastore ${from}: ${messageOf(error)}`)
  } finally {
    db?.close()
  }
}

async function copyIfThere(from: string, to: string, keep?: (name: string) => boolean): Promise<void> {
  if (!(await pathExists(from))) return
  await mkdir(dirname(to), {recursive: true, mode: 0o700})
  await cp(from, to, {
    recursive: true,
    preserveTimestamps: true,
    filter: (source) => !keep || source === from || keep(source.slice(source.lastIndexOf('/') + 1)),
  })
}

/** An unpacked archive: where its two trees are, and how to let go of them. */
export interface Unpacked {
  readonly k3s: string
  readonly hybrid: string
  remove(): Promise<void>
}

/**
 * Unpack into a private scratch directory: regular files and directories only, no path leaving it (tar's
 * defaults strip `..` and leading `/`).
 */
export async function unpackArchive(archive: Buffer): Promise<Unpacked> {
  const dir = await scratch()
  const remove = () => rm(dir, {recursive: true, force: true})
  try {
    await pipeline(
      Readable.from([archive]),
      extract({
        cwd: dir,
        strict: true,
        filter: (_path, entry) => 'type' in entry && ['File', 'Directory'].includes(String(entry.type)),
      }),
    )
  } catch (error) {
    await remove()
    throw new HybridError('SNAPSHOT_REFUSED', `the snapshot's archive cannot be unpacked: ${messageOf(error)}`)
  }
  if (!(await pathExists(join(dir, 'k3s', 'server', 'db', 'state.db')))) {
    await remove()
    throw new HybridError('SNAPSHOT_REFUSED', 'the snapshot holds no datastore (k3s/server/db/state.db)')
  }
  return {k3s: join(dir, 'k3s'), hybrid: join(dir, 'hybrid'), remove}
}

/**
 * Put an unpacked snapshot in place: the data dir's files (into a data dir that has no server yet), the
 * worker records and the list of removed Nodes. The old sandbox's state.json is not put back: its pids,
 * workarounds and addresses were that sandbox's; this `up` writes its own.
 */
export async function installUnpacked(unpacked: Unpacked, dataDir: string, paths: ClusterPaths): Promise<string[]> {
  const installed: string[] = []
  for (const name of await readdir(unpacked.k3s)) {
    await cp(join(unpacked.k3s, name), join(dataDir, name), {recursive: true, preserveTimestamps: true, force: true})
    installed.push(join(dataDir, name))
  }
  const workers = join(unpacked.hybrid, 'workers')
  if (await pathExists(workers)) {
    await mkdir(paths.workers, {recursive: true, mode: 0o700})
    for (const name of await readdir(workers)) {
      await cp(join(workers, name), join(paths.workers, name), {force: true})
      installed.push(join(paths.workers, name))
    }
  }
  const removed = join(unpacked.hybrid, 'removed-nodes.json')
  if (await pathExists(removed)) {
    await cp(removed, join(paths.dir, 'removed-nodes.json'), {force: true})
    installed.push(join(paths.dir, 'removed-nodes.json'))
  }
  return installed
}
