import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import lockfile from 'proper-lockfile'

import {HybridError, messageOf} from '../errors.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {clusterPaths, readStateText} from './cluster-state.js'

/**
 * Nodes whose workers were uninstalled while the API was not there to delete them (`down
 * --uninstall-workers`): k3s keeps its Nodes and their node-password secrets in its datastore across
 * restarts, so the next `up` deletes them as soon as its API is ready, before any worker joins
 * (phases/forget-removed-nodes.ts). Kept in `clusters/<name>/removed-nodes.json`, beside the state file
 * and not in it: `down` removes the state file, and this list must outlive it. Changed under a lock, as
 * several workers leave at once.
 */
export interface RemovedNodes {
  readonly version: 1
  /** Node names, each once. */
  readonly nodes: readonly string[]
}

function removedNodesFile(cluster: string): string {
  return join(clusterPaths(cluster).dir, 'removed-nodes.json')
}

/** The Nodes still to delete ([] when none). */
export async function readRemovedNodes(cluster: string): Promise<string[]> {
  const file = removedNodesFile(cluster)
  const text = await readStateText(file, `the Nodes of removed workers of cluster ${cluster}`)
  if (text === undefined) return []
  try {
    const list = JSON.parse(text) as RemovedNodes
    if (list.version !== 1 || !Array.isArray(list.nodes)) throw new Error('not a list of this version')
    return list.nodes.filter((n): n is string => typeof n === 'string')
  } catch (error) {
    throw new HybridError(
      'STATE_INVALID',
      `${file} is unusable: ${messageOf(error)}; delete the Nodes it names by hand (kubectl delete node), then remove the file`,
    )
  }
}

async function changeRemovedNodes(cluster: string, change: (nodes: string[]) => string[]): Promise<void> {
  const file = removedNodesFile(cluster)
  await mkdir(clusterPaths(cluster).dir, {recursive: true, mode: 0o700})
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: 10_000,
    retries: {retries: 50, minTimeout: 50, maxTimeout: 500},
  })
  try {
    const next = change(await readRemovedNodes(cluster))
    if (next.length === 0) await rm(file, {force: true})
    else await writeFileAtomic(file, `${JSON.stringify({version: 1, nodes: next}, null, 2)}\n`, 0o600)
  } finally {
    await release()
  }
}

/** Remember a Node to delete at the next `up`. */
export function recordRemovedNode(cluster: string, node: string): Promise<void> {
  return changeRemovedNodes(cluster, (nodes) => (nodes.includes(node) ? nodes : [...nodes, node]))
}

/** Forget Nodes once they (and their secrets) are deleted. */
export function forgetRemovedNodes(cluster: string, done: readonly string[]): Promise<void> {
  return changeRemovedNodes(cluster, (nodes) => nodes.filter((n) => !done.includes(n)))
}
