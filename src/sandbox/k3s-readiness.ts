import type {KubeConfig} from '@kubernetes/client-node'
import type {Logger} from 'pino'

import {kubeConfigFromFile} from '../kube/client.js'
import {waitNodesReady} from '../kube/nodes.js'
import {pollUntil, waitApiReady} from '../kube/readiness.js'
import type {LaunchSpec} from '../state/cluster-state.js'
import {type Running, terminate} from './k3s-process.js'

export interface ReadinessOptions {
  readonly timeoutMs: number
  /** Aborted when the supervisor stops. */
  readonly signal: AbortSignal
  /** SIGTERM, then SIGKILL after this long, for a k3s that did not get ready in time. */
  readonly graceMs: number
  readonly logger: Logger
}

/**
 * Wait for one run of k3s to be ready: the kubeconfig it writes, `/readyz` through it, then the sandbox
 * Node. On timeout k3s is stopped, so that the supervisor's loop sees it exit. Never rejects.
 */
export async function waitK3sReady(
  launch: LaunchSpec,
  running: Running,
  options: ReadinessOptions,
): Promise<'ready' | 'aborted' | {timeout: Error}> {
  const gone = new AbortController()
  void running.exited.then(() => gone.abort(new Error('k3s exited')))
  const signal = AbortSignal.any([gone.signal, options.signal])
  const {timeoutMs, logger} = options
  try {
    // k3s may be writing the file while it is read: a half-written one is "not yet".
    const kc = await pollUntil(
      `k3s writing its kubeconfig ${launch.k3sKubeconfig}`,
      async () => tryKubeConfig(launch.k3sKubeconfig),
      {timeoutMs, signal, intervalMs: 250},
    )
    await waitApiReady(kc, {timeoutMs, signal})
    logger.info({k3sPid: running.pid}, 'the API server is ready')
    if (launch.nodeName) await waitNodesReady(kc, [launch.nodeName], {timeoutMs, signal})
  } catch (error) {
    if (signal.aborted) return 'aborted'
    logger.error(`k3s did not become ready within ${timeoutMs / 1000} s; stopping it`)
    await terminate(running, options.graceMs)
    return {timeout: error instanceof Error ? error : new Error(String(error))}
  }
  return 'ready'
}

function tryKubeConfig(file: string): KubeConfig | undefined {
  try {
    return kubeConfigFromFile(file)
  } catch {
    return undefined
  }
}
