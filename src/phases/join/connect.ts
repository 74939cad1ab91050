import {HybridError} from '../../errors.js'
import type {HostHandle} from '../../plan/index.js'
import {factsOptions, judgeFacts} from '../../remote/worker-check.js'
import type {JoinStep, JoinTarget} from './join-target.js'

/**
 * Connect to the worker (host key under its policy) and gather its facts; a worker that cannot be used
 * (no sudo, no k3s for its architecture, a k3s server there, ports taken, sshd refusing the tunnel with
 * manageSshd off) fails here, before anything on it changes, with the same sentences as `preflight`.
 */
export const connectWorker: JoinStep = {
  title: 'connect',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const host = await run.connections.host(worker)
    const facts = await host.facts(factsOptions(run.inventory))
    const {problems} = judgeFacts(worker, facts, run.inventory)
    if (problems.length > 0) throw new HybridError('WORKERS_NOT_READY', problems.join('; '), {exitCode: 1})
    handle.logger.debug(
      {os: facts.os?.prettyName, arch: facts.arch.k3s, init: facts.init.system, k3s: facts.k3s.version},
      'facts gathered',
    )
    target.host = host
    target.facts = facts
  },
}
