import {resolve} from 'node:path'

import {HybridError} from '../errors.js'
import {API_CERT_NAME} from '../k3s/server-config.js'
import {clusterKubeconfig} from '../kube/cluster-kubeconfig.js'
import {forwardedKubeconfig} from '../kube/kubeconfig.js'
import {sshLocalForward} from '../remote/ssh-command.js'
import {readState} from '../state/cluster-state.js'
import {listWorkerRecords, readWorkerRecord} from '../state/worker-records.js'
import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * `kubeconfig --via WORKER`: the sandbox takes no inbound connections, but every worker in tunnel mode has
 * the API on the advertised address (its end of the API tunnel). A laptop that can SSH to that worker
 * forwards a local port there with `ssh -L`; the kubeconfig written here points at that port and verifies
 * the API's certificate against a name it carries (`tls-server-name`).
 */
export interface KubeconfigViaResult {
  readonly cluster: string
  readonly context: string
  readonly worker: string
  /** The kubeconfig written (0600): server https://127.0.0.1:<localPort>. */
  readonly file: string
  readonly server: string
  readonly tlsServerName: string
  readonly localPort: number
  /** Where the worker's sshd forwards to: the API's address and port on the worker. */
  readonly target: {readonly address: string; readonly port: number}
  /** The command to run on the laptop, as an argument array. */
  readonly ssh: readonly string[]
}

export interface KubeconfigViaOptions {
  readonly cluster: string
  readonly context: string
  readonly worker: string
  /** Default: the API's port. */
  readonly localPort?: number
  /** Default: `<cluster>-via-<worker>.kubeconfig` in the working directory (to copy to the laptop). */
  readonly output?: string
}

export async function kubeconfigVia(options: KubeconfigViaOptions): Promise<KubeconfigViaResult> {
  const {cluster, worker} = options
  const record = await readWorkerRecord(cluster, worker)
  if (!record) {
    const known = (await listWorkerRecords(cluster)).map((r) => r.worker)
    throw new HybridError(
      'WORKER_UNKNOWN',
      `cluster ${cluster} has no joined worker named ${worker} (joined: ${known.join(', ') || 'none'}); \`hybrid workers list\` shows its workers`,
      {exitCode: 2},
    )
  }
  if (!record.tunnel)
    throw new HybridError(
      'TUNNEL_DOWN',
      `worker ${worker} holds no API tunnel (network.mode direct, or it has not joined yet), so the API is not on its advertised address; join it in tunnel mode, or reach the API directly`,
    )
  const state = await readState(cluster)
  const found = await clusterKubeconfig(cluster, state)
  if (!found)
    throw new HybridError(
      'CLUSTER_NOT_UP',
      `cluster ${cluster} is not up (it has no kubeconfig); \`hybrid up --inventory FILE\` brings it up`,
    )
  const target = {address: record.tunnel.bindAddress, port: record.tunnel.bindPort}
  const localPort = options.localPort ?? target.port
  const server = `https://127.0.0.1:${localPort}`
  const file = resolve(options.output ?? `${cluster}-via-${worker}.kubeconfig`)
  // Secret (client key): written 0600 through a temp file and a rename, never printed.
  await writeFileAtomic(file, forwardedKubeconfig(found.text, options.context, server, API_CERT_NAME), 0o600)
  return {
    cluster,
    context: options.context,
    worker,
    file,
    server,
    tlsServerName: API_CERT_NAME,
    localPort,
    target,
    ssh: sshLocalForward(record.spec, localPort, target),
  }
}
