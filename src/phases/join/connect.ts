import {HybridError} from '../../errors.js'
import type {Inventory, WorkerSpec} from '../../inventory/model.js'
import type {HostHandle} from '../../plan/index.js'
import type {SshConnections} from '../../remote/connections.js'
import type {HostFacts} from '../../remote/facts.js'
import type {SshHost} from '../../remote/ssh-host.js'
import {factsOptions, judgeFacts} from '../../remote/worker-check.js'
import type {JoinStep, JoinTarget} from './join-target.js'

/**
 * Connect to a worker (host key under its policy), gather its facts and judge them as `preflight` does;
 * a worker that cannot be used throws its problems as one sentence. Changes nothing on it.
 */
export async function connectAndCheck(
  connections: SshConnections,
  worker: WorkerSpec,
  inventory: Inventory,
): Promise<{host: SshHost; facts: HostFacts}> {
  const host = await connections.host(worker)
  const facts = await host.facts(factsOptions(inventory))
  const {problems} = judgeFacts(worker, facts, inventory)
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
    const {host, facts} = await connectAndCheck(run.connections, worker, run.inventory)
    handle.logger.debug(
      {os: facts.os?.prettyName, arch: facts.arch.k3s, init: facts.init.system, k3s: facts.k3s.version},
      'facts gathered',
    )
    target.host = host
    target.facts = facts
  },
}
