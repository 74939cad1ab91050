import {agentSpecFor} from '../../agent/agent-config.js'
import {chooseService} from '../../agent/service.js'
import {HybridError} from '../../errors.js'
import type {Inventory, WorkerSpec} from '../../inventory/model.js'
import type {HostHandle} from '../../plan/index.js'
import type {SshConnections} from '../../remote/connections.js'
import type {HostFacts} from '../../remote/facts.js'
import type {SshHost} from '../../remote/ssh-host.js'
import {caOfToken} from '../../remote/ownership.js'
import {factsOptions, judgeFacts} from '../../remote/worker-check.js'
import {readWorkerRecord} from '../../state/worker-records.js'
import type {JoinStep, JoinTarget} from './join-target.js'
import {preexistingPaths} from './record-agent.js'

/**
 * Connect to a worker (host key under its policy), gather its facts and judge them as `preflight` does;
 * a worker that cannot be used throws its problems as one sentence. Changes nothing on it.
 */
export async function connectAndCheck(
  connections: SshConnections,
  worker: WorkerSpec,
  inventory: Inventory,
  cluster: string,
  ca?: string | null,
): Promise<{host: SshHost; facts: HostFacts}> {
  const host = await connections.host(worker)
  const facts = await host.facts(factsOptions(inventory))
  // This cluster's record of k3s there (its agent, or a binary a join was stopped after uploading) makes it ours.
  const installed = (await readWorkerRecord(cluster, worker.name))?.installed
  const recorded = installed?.agent !== undefined || installed?.binary !== undefined
  const {problems} = judgeFacts(worker, facts, inventory, {ca, recorded})
  if (problems.length > 0) throw new HybridError('WORKERS_NOT_READY', problems.join('; '), {exitCode: 1})
  return {host, facts}
}

/**
 * Connect to the worker (host key under its policy) and gather its facts; a worker that cannot be used
 * (no sudo, no k3s for its architecture, a k3s server there, ports taken, sshd refusing the tunnel with
 * manageSshd off) fails here, before anything on it changes, with the same sentences as `preflight`.
 */
export const connectWorker: JoinStep = {
  title: 'connect',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = await connectAndCheck(
      run.connections,
      worker,
      run.inventory,
      run.cluster,
      caOfToken(run.token),
    )
    handle.logger.debug(
      {os: facts.os?.prettyName, arch: facts.arch.k3s, init: facts.init.system, k3s: facts.k3s.version},
      'facts gathered',
    )
    target.host = host
    target.facts = facts
    target.kept = await preexistingPaths(
      target,
      host,
      chooseService(worker.service, facts),
      agentSpecFor(worker, run.server, facts, run.cluster),
    )
  },
}
