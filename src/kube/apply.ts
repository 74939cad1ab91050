import {createHash} from 'node:crypto'

import {ApiException, KubernetesObjectApi, type KubeConfig, type KubernetesObject} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'

/**
 * Manifests applied through the API, the way `kubectl apply` leaves a cluster: read each object, create it
 * when missing, replace it when it differs, leave it alone when it is already right. The one helper for
 * every caller that puts objects into the cluster (the workers' CNI, and whatever comes next) and takes
 * them out again (`down`).
 */

/** The client's object API, with its discovery lookup (protected there) telling whether a kind is served. */
class ObjectApi extends KubernetesObjectApi {
  static forConfig(kc: KubeConfig): ObjectApi {
    const api = kc.makeApiClient(ObjectApi)
    api.setDefaultNamespace(kc)
    return api
  }

  async serves(object: KubernetesObject): Promise<boolean> {
    try {
      return (await this.resource(object.apiVersion ?? '', object.kind ?? '')) !== undefined
    } catch (error) {
      if (statusOf(error) === 404) return false // the whole group/version is unknown
      throw error
    }
  }
}

export type ApplyOutcome = 'created' | 'updated' | 'unchanged'
export type DeleteOutcome = 'deleted' | 'absent'

export interface Applied<O extends string> {
  /** "DaemonSet kube-system/kube-flannel-ds", "ClusterRole flannel": how summaries and errors name it. */
  readonly object: string
  readonly outcome: O
}

/**
 * The annotation holding a digest of what hybrid last applied. The API server adds defaults to what it
 * stores, so "already right" is: the digest matches (nothing was removed from the manifest since) and
 * every field of the manifest has its value in the live object (nobody changed it since).
 */
export const APPLIED_ANNOTATION = 'hybrid.dev/applied-digest'

export interface ApplyOptions {
  /** Recorded by the API server as the writer of the fields. */
  readonly fieldManager?: string
}

/** Apply `objects` in order (a namespace or a ConfigMap before what uses it); the first failure stops. */
export async function applyObjects(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
  options: ApplyOptions = {},
): Promise<Array<Applied<ApplyOutcome>>> {
  const fieldManager = options.fieldManager ?? 'hybrid'
  return eachObject(kc, objects, 'apply', (api, object) => applyOne(api, object, fieldManager))
}

/**
 * What `applyObjects` would do, changing nothing: the read a phase makes outside `ctx.wet` to say
 * "already" or to list, in a dry run, what it would create and update.
 */
export async function compareObjects(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
): Promise<Array<Applied<ApplyOutcome>>> {
  return eachObject(kc, objects, 'read', async (api, object) => (await judge(api, object)).outcome)
}

async function eachObject(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
  verb: string,
  fn: (api: ObjectApi, object: KubernetesObject) => Promise<ApplyOutcome>,
): Promise<Array<Applied<ApplyOutcome>>> {
  const api = ObjectApi.forConfig(kc)
  const results: Array<Applied<ApplyOutcome>> = []
  for (const object of objects) {
    const name = objectName(object)
    try {
      results.push({object: name, outcome: await fn(api, object)})
    } catch (error) {
      throw new HybridError('KUBE_APPLY_FAILED', `cannot ${verb} ${name}: ${apiMessage(error)}`, {cause: error})
    }
  }
  return results
}

/** Delete `objects` in reverse order (users before what they use); one already gone counts as 'absent'. */
export async function deleteObjects(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
): Promise<Array<Applied<DeleteOutcome>>> {
  const api = ObjectApi.forConfig(kc)
  const results: Array<Applied<DeleteOutcome>> = []
  for (const object of [...objects].reverse()) {
    const name = objectName(object)
    try {
      if (!(await api.serves(object))) {
        results.push({object: name, outcome: 'absent'}) // no such kind here, so no such object either
        continue
      }
      // Background: the DaemonSet's pods go after it, as `kubectl delete` does.
      await api.delete(header(object), undefined, undefined, undefined, undefined, 'Background')
      results.push({object: name, outcome: 'deleted'})
    } catch (error) {
      if (statusOf(error) === 404) results.push({object: name, outcome: 'absent'})
      else throw new HybridError('KUBE_DELETE_FAILED', `cannot delete ${name}: ${apiMessage(error)}`, {cause: error})
    }
  }
  return results.reverse()
}

/** Where the object stands: missing ('created' is what applying does), different, or already right. */
async function judge(
  api: ObjectApi,
  desired: KubernetesObject,
): Promise<{outcome: ApplyOutcome; live?: KubernetesObject}> {
  // Asked first, so a kind the API does not serve is not mistaken for an object that is missing.
  if (!(await api.serves(desired)))
    throw new Error(`no matches for kind "${desired.kind}" in version "${desired.apiVersion}"`)
  let live: KubernetesObject
  try {
    live = plain(await api.read(header(desired)))
  } catch (error) {
    if (statusOf(error) === 404) return {outcome: 'created'}
    throw error
  }
  const same = live.metadata?.annotations?.[APPLIED_ANNOTATION] === digestOf(desired) && contains(live, desired)
  return {outcome: same ? 'unchanged' : 'updated', live}
}

async function applyOne(api: ObjectApi, desired: KubernetesObject, fieldManager: string): Promise<ApplyOutcome> {
  const {outcome, live} = await judge(api, desired)
  const digest = digestOf(desired)
  if (outcome === 'created') {
    await api.create(withAnnotations(desired, {}, digest), undefined, undefined, fieldManager)
  } else if (outcome === 'updated') {
    const next = withAnnotations(desired, live?.metadata ?? {}, digest)
    // The live resourceVersion makes the replace conditional: a writer in between is a conflict, not a loss.
    next.metadata = {...next.metadata, resourceVersion: live?.metadata?.resourceVersion}
    await api.replace(next, undefined, undefined, fieldManager)
  }
  return outcome
}

/**
 * The manifest with the digest annotation; labels and annotations others put on the live object (the
 * DaemonSet controller's, a user's) are kept beside hybrid's own.
 */
function withAnnotations(
  desired: KubernetesObject,
  live: NonNullable<KubernetesObject['metadata']>,
  digest: string,
): KubernetesObject {
  const metadata = desired.metadata ?? {}
  return {
    ...desired,
    metadata: {
      ...metadata,
      labels: {...live.labels, ...metadata.labels},
      annotations: {...live.annotations, ...metadata.annotations, [APPLIED_ANNOTATION]: digest},
    },
  }
}

/** sha256 of the manifest in a canonical form (keys sorted), so key order never counts as a change. */
export function digestOf(object: KubernetesObject): string {
  return createHash('sha256').update(canonical(object)).digest('hex').slice(0, 32)
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * Does `live` hold every field of `wanted` with the same value? Lists must have the same length (an
 * element removed is a change); fields only `live` has are the server's defaults and do not count.
 */
export function contains(live: unknown, wanted: unknown): boolean {
  if (Array.isArray(wanted)) {
    return Array.isArray(live) && live.length === wanted.length && wanted.every((w, i) => contains(live[i], w))
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false
    const have = live as Record<string, unknown>
    return Object.entries(wanted as Record<string, unknown>).every(([k, w]) => w === undefined || contains(have[k], w))
  }
  return live === wanted
}

/** "Kind namespace/name" or "Kind name". */
export function objectName(object: KubernetesObject): string {
  const {name = '?', namespace} = object.metadata ?? {}
  return `${object.kind ?? '?'} ${namespace ? `${namespace}/` : ''}${name}`
}

function header(object: KubernetesObject) {
  const {name = '', namespace} = object.metadata ?? {}
  return {apiVersion: object.apiVersion, kind: object.kind, metadata: {name, ...(namespace ? {namespace} : {})}}
}

/** The client returns typed class instances (dates as Date): compare them as the JSON the API sent. */
function plain(object: KubernetesObject): KubernetesObject {
  return JSON.parse(JSON.stringify(object)) as KubernetesObject
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined
}

/** The API's own sentence (a Status object's message), else the transport's. */
function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = typeof error.body === 'string' ? parseJson(error.body) : error.body
    const message = (body as {message?: unknown} | undefined)?.message
    return typeof message === 'string' && message !== '' ? message : `the API answered ${String(error.code)}`
  }
  return messageOf(error).split('\n')[0]
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
