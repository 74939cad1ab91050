import {startAgent} from '../../agent/install.js'
import {chooseService} from '../../agent/service.js'
import type {HostHandle} from '../../plan/index.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'

/**
 * Start the agent, or restart it when its binary, config or service changed in this run; a running
 * agent with nothing changed is left alone (a second `up` restarts nothing).
 */
export const startAgentStep: JoinStep = {
  title: 'start the agent',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = connected(target)
    const service = chooseService(worker.service, facts)
    const changed = target.agentChanged === true
    if (!changed && (await service.running(host))) {
      handle.logger.debug({service: service.kind}, 'the agent is running')
      return
    }
    const sentence = `${changed ? 'restart' : 'start'} the k3s agent (${service.kind})`
    const how = await run.ctx.wet(worker.name, sentence, () => startAgent(host, service, changed))
    if (how) handle.logger.info({service: service.kind}, `k3s agent ${how}`)
  },
}
