import {agentSpecFor} from '../../agent/agent-config.js'
import {installService} from '../../agent/install.js'
import {chooseService} from '../../agent/service.js'
import {differingFiles} from '../../agent/worker-files.js'
import type {HostHandle} from '../../plan/index.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'
import {recordAgent} from './record-agent.js'

/**
 * The agent's service, chosen from the facts (or the worker's `service`): a systemd unit modelled on
 * k3s's own k3s-agent.service, an OpenRC script, or with no init system hybrid's small supervisor with a
 * pidfile. Only written when it differs.
 */
export const installServiceStep: JoinStep = {
  title: 'install the service',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = connected(target)
    const spec = agentSpecFor(worker, run.server, facts, run.cluster)
    const service = chooseService(worker.service, facts)
    const differing = await differingFiles(host, service.files(spec))
    if (differing.length === 0) {
      handle.logger.debug({service: service.kind}, 'the service is installed')
      return
    }
    await run.ctx.wet(worker.name, `install the k3s-agent service (${service.kind})`, async () => {
      await recordAgent(target, service, spec)
      target.agentChanged = (await installService(host, service, spec, differing)) || target.agentChanged
    })
  },
}
