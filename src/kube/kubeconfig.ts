import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {delimiter, join} from 'node:path'

import {parse, stringify} from 'yaml'

import {HybridError, messageOf} from '../errors.js'
import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * Kubeconfig files as YAML documents: the user's copy made from the one k3s writes, and merging it into
 * ~/.kube/config. Their content is a secret (client keys): it is never logged, files are 0600.
 */
interface Named {
  name: string
  [key: string]: unknown
}
interface KubeconfigDoc {
  apiVersion?: string
  kind?: string
  clusters?: Named[]
  users?: Named[]
  contexts?: Array<Named & {context?: {cluster?: string; user?: string; [key: string]: unknown}}>
  'current-context'?: string
  [key: string]: unknown
}

function parseDoc(text: string, source: string): KubeconfigDoc {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (error) {
    throw new HybridError('KUBECONFIG_INVALID', `${source} is not valid YAML: ${messageOf(error).split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new HybridError('KUBECONFIG_INVALID', `${source} is not a kubeconfig (not a YAML mapping)`)
  return doc as KubeconfigDoc
}

/**
 * The user's kubeconfig from the one k3s wrote: its (single) cluster, user and context all renamed to
 * `name`, the server set to `server` (https://127.0.0.1:<apiPort>), and `name` the current context.
 */
export function userKubeconfig(
  k3sText: string,
  name: string,
  server: string,
  source = 'the kubeconfig k3s wrote',
): string {
  const doc = parseDoc(k3sText, source)
  const current = doc.contexts?.find((c) => c.name === doc['current-context']) ?? doc.contexts?.[0]
  const cluster = doc.clusters?.find((c) => c.name === current?.context?.cluster) ?? doc.clusters?.[0]
  const user = doc.users?.find((u) => u.name === current?.context?.user) ?? doc.users?.[0]
  if (!cluster || !user) throw new HybridError('KUBECONFIG_INVALID', `${source} has no cluster or no user`)
  const out: KubeconfigDoc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{...cluster, name, cluster: {...(cluster.cluster as object), server}}],
    users: [{...user, name}],
    contexts: [{name, context: {...(current?.context ?? {}), cluster: name, user: name}}],
    'current-context': name,
    preferences: {},
  }
  return stringify(out, {lineWidth: 0})
}

/**
 * The kubeconfig for a forwarded port (`kubeconfig --via`): named `name`, its server `server`
 * (https://127.0.0.1:<local port>), and `tls-server-name` a name the API's certificate carries, so that
 * the certificate is verified against that name whatever address the port is reached at.
 */
export function forwardedKubeconfig(text: string, name: string, server: string, tlsServerName: string): string {
  const doc = parseDoc(userKubeconfig(text, name, server), 'the kubeconfig')
  const cluster = doc.clusters![0]
  cluster.cluster = {...(cluster.cluster as object), 'tls-server-name': tlsServerName}
  return stringify(doc, {lineWidth: 0})
}

/** The same kubeconfig with its cluster, user and context named `name` instead (`--context NAME`). */
export function renameKubeconfig(text: string, name: string): string {
  const doc = parseDoc(text, 'the kubeconfig')
  const server = ((doc.clusters?.[0]?.cluster ?? {}) as {server?: string}).server ?? ''
  return userKubeconfig(text, name, server)
}

function upsert<T extends Named>(list: T[] | undefined, items: T[] | undefined): T[] {
  const result = [...(list ?? [])]
  for (const item of items ?? []) {
    const at = result.findIndex((x) => x.name === item.name)
    if (at === -1) result.push(item)
    else result[at] = item
  }
  return result
}

/**
 * `addition` merged into `existing` (undefined: no file yet): entries with the same names are replaced,
 * everything else in the user's file stays, and the added context becomes the current one.
 */
export function mergeKubeconfig(
  existing: string | undefined,
  addition: string,
  existingSource = 'the existing kubeconfig',
): string {
  const base = existing === undefined ? {} : parseDoc(existing, existingSource)
  const add = parseDoc(addition, 'the cluster kubeconfig')
  const merged: KubeconfigDoc = {
    ...base,
    apiVersion: base.apiVersion ?? 'v1',
    kind: base.kind ?? 'Config',
    clusters: upsert(base.clusters, add.clusters),
    users: upsert(base.users, add.users),
    contexts: upsert(base.contexts, add.contexts),
    'current-context': add['current-context'] ?? base['current-context'],
  }
  return stringify(merged, {lineWidth: 0})
}

/** The file `--merge` writes: the first entry of KUBECONFIG (as kubectl does for writes), else ~/.kube/config. */
export function mergeTarget(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.KUBECONFIG ?? '').split(delimiter).find((p) => p !== '')
  return first ?? join(homedir(), '.kube', 'config')
}

/** Merge `addition` into the file at `target`, atomically, 0600. */
export async function mergeIntoFile(target: string, addition: string): Promise<void> {
  let existing: string | undefined
  try {
    existing = await readFile(target, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new HybridError('KUBECONFIG_UNREADABLE', `cannot read ${target}: ${messageOf(error)}`)
  }
  await writeFileAtomic(target, mergeKubeconfig(existing, addition, target), 0o600)
}
