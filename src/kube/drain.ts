import {setTimeout as sleep} from 'node:timers/promises'

import {CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'
import {statusOf} from './client.js'
import {pollUntil} from './readiness.js'

/**
 * Taking a Node out of the cluster as `kubectl drain --force --ignore-daemonsets --delete-emptydir-data`
 * and `kubectl delete node` do: cordon, evict its pods through the eviction API (so PodDisruptionBudgets
 * hold; DaemonSet pods, mirror pods and finished pods stay; pods no controller manages are evicted and
 * not recreated anywhere; emptyDir data goes with its pod), wait for them to go, delete the Node and the
 * node-password secret k3s keeps for it (kube-system/<node>.node-password.k3s), so the same name can join
 * again with a new password.
 */

function evictable(pod: V1Pod): boolean {
  const owners = pod.metadata?.ownerReferences ?? []
  const mirror = pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined
  const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
  return !mirror && !finished && !owners.some((o) => o.kind === 'DaemonSet')
}

/** kubectl drain's pause before it asks again for an eviction a PodDisruptionBudget refused. */
export const EVICTION_RETRY_MS = 5000

export interface DrainOptions {
  /** The whole drain (evictions, their retries, the pods going) ends within this; then DRAIN_BLOCKED or TIMEOUT. */
  readonly timeoutMs: number
  readonly signal?: AbortSignal
  /** Pause between rounds of refused evictions (EVICTION_RETRY_MS). */
  readonly retryMs?: number
  /** Hears each refused eviction, in kubectl drain's words, before the retry. */
  readonly onRefused?: (message: string) => void
  /** What gives the drain more time, for the sentence at its deadline (default `--drain-timeout`). */
  readonly timeoutSetting?: string
}

/** An eviction the API server refused with 429 because of the pod's disruption budget. */
interface Refusal {
  readonly pod: V1Pod
  /** The budget's name, from the refusal's DisruptionBudget cause ('' when the server named none). */
  readonly budget: string
  /** The cause's words ("The disruption budget web needs 2 healthy pods and has 2 currently"). */
  readonly cause: string
}

/**
 * Cordon `node` and evict its pods; returns how many were evicted. A Node that is gone is already drained.
 * An eviction refused with 429 (a PodDisruptionBudget allows no disruption now) is asked again every 5 s, as
 * `kubectl drain` does, until the budget allows it or the drain's time is up: then one sentence names the
 * pod and its budget. Any other refusal fails the drain at once.
 */
export async function drainNode(kc: KubeConfig, node: string, options: DrainOptions): Promise<{evicted: number}> {
  const deadline = Date.now() + options.timeoutMs
  const core = kc.makeApiClient(CoreV1Api)
  try {
    await core.patchNode(
      {name: node, body: {spec: {unschedulable: true}}},
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
  } catch (error) {
    if (statusOf(error) === 404) return {evicted: 0}
    throw new HybridError('KUBE_API_FAILED', `cannot cordon Node ${node}: ${messageOf(error).split('\n')[0]}`)
  }
  const podsOn = async () =>
    (await core.listPodForAllNamespaces({fieldSelector: `spec.nodeName=${node}`})).items.filter(evictable)
  const pods = await podsOn()
  let waiting = pods
  for (;;) {
    const refused: Refusal[] = []
    for (const pod of waiting) {
      const refusal = await evict(core, pod, node)
      if (refusal) refused.push(refusal)
    }
    if (refused.length === 0) break
    if (Date.now() >= deadline)
      throw blocked(node, refused, options.timeoutMs, options.timeoutSetting ?? '--drain-timeout')
    const retryMs = options.retryMs ?? EVICTION_RETRY_MS
    for (const r of refused)
      options.onRefused?.(
        `error when evicting pods/"${r.pod.metadata?.name}" -n "${r.pod.metadata?.namespace}" (will retry after ${retryMs / 1000}s): ${r.cause}`,
      )
    try {
      // the last retry comes at the deadline itself
      await sleep(Math.min(retryMs, deadline - Date.now()), undefined, {signal: options.signal})
    } catch {
      options.signal?.throwIfAborted()
    }
    waiting = refused.map((r) => r.pod)
  }
  if (pods.length > 0)
    await pollUntil(`the pods leaving Node ${node}`, async () => ((await podsOn()).length === 0 ? true : undefined), {
      timeoutMs: Math.max(deadline - Date.now(), 1000),
      signal: options.signal,
      intervalMs: 500,
    })
  return {evicted: pods.length}
}

/** Ask the API server to evict one pod: undefined when it went (or was gone), a Refusal on 429, else an error. */
async function evict(core: CoreV1Api, pod: V1Pod, node: string): Promise<Refusal | undefined> {
  const name = pod.metadata?.name ?? ''
  const namespace = pod.metadata?.namespace ?? 'default'
  try {
    await core.createNamespacedPodEviction({
      name,
      namespace,
      body: {apiVersion: 'policy/v1', kind: 'Eviction', metadata: {name, namespace}},
    })
    return undefined
  } catch (error) {
    if (statusOf(error) === 404) return undefined
    if (statusOf(error) === 429) return refusal(pod, error)
    throw new HybridError(
      'KUBE_API_FAILED',
      `cannot evict pod ${namespace}/${name} from Node ${node}: ${messageOf(error).split('\n')[0]}`,
    )
  }
}

/** The Status of a 429 eviction: its message and the DisruptionBudget cause that names the budget. */
function refusal(pod: V1Pod, error: unknown): Refusal {
  const raw = (error as {body?: unknown}).body
  let status: {message?: string; details?: {causes?: Array<{reason?: string; message?: string}>}} = {}
  try {
    status = (typeof raw === 'string' ? JSON.parse(raw) : (raw ?? {})) as typeof status
  } catch {
    // not a Status: the cause stays unnamed
  }
  const cause = status.details?.causes?.find((c) => c.reason === 'DisruptionBudget')?.message ?? ''
  const budget = /^The disruption budget (\S+) /.exec(cause)?.[1] ?? ''
  return {pod, budget, cause: cause || status.message || 'the API server refused the eviction (429)'}
}

/** The sentence when budgets still refuse evictions at the drain's deadline: the first pod and its budget. */
function blocked(node: string, refused: readonly Refusal[], timeoutMs: number, setting: string): HybridError {
  const [first] = refused
  const pod = `${first.pod.metadata?.namespace}/${first.pod.metadata?.name}`
  const budget = first.budget
    ? `PodDisruptionBudget ${first.pod.metadata?.namespace}/${first.budget}`
    : 'its PodDisruptionBudget'
  const more = refused.length > 1 ? ` (and ${refused.length - 1} more pod${refused.length > 2 ? 's' : ''})` : ''
  return new HybridError(
    'DRAIN_BLOCKED',
    `cannot drain Node ${node} within ${Math.round(timeoutMs / 1000)} s: evicting pod ${pod}${more} would violate ${budget} (${first.cause}); relax the budget or give the drain more time (${setting})`,
  )
}

/** Delete the Node and its node-password secret; what is already gone is fine. Returns whether the Node was there. */
export async function deleteNode(kc: KubeConfig, node: string): Promise<boolean> {
  const core = kc.makeApiClient(CoreV1Api)
  let existed = true
  try {
    await core.deleteNode({name: node})
  } catch (error) {
    if (statusOf(error) !== 404)
      throw new HybridError('KUBE_API_FAILED', `cannot delete Node ${node}: ${messageOf(error).split('\n')[0]}`)
    existed = false
  }
  try {
    await core.deleteNamespacedSecret({name: `${node}.node-password.k3s`, namespace: 'kube-system'})
  } catch (error) {
    if (statusOf(error) !== 404)
      throw new HybridError(
        'KUBE_API_FAILED',
        `cannot delete the node-password secret of ${node}: ${messageOf(error).split('\n')[0]}`,
      )
  }
  return existed
}
