import {agentSpecFor} from '../../agent/agent-config.js'
import {nodeAddresses} from '../../agent/node-addresses.js'
import {agentFiles, agentRecord, writeAgentFiles} from '../../agent/install.js'
import {chooseService} from '../../agent/service.js'
import {differingFiles} from '../../agent/worker-files.js'
import {WORKER_PATHS} from '../../agent/worker-paths.js'
import type {HostHandle} from '../../plan/index.js'
import {recordInstalled} from '../../state/worker-records.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'

/**
 * /etc/rancher/k3s/config.yaml (server, node name, labels, taints, the Node's addresses) and the token file, both 0600
 * root's. The token goes into its file over the connection's stdin: never into argv, an environment or
 * a log. What the agent install will put on the worker is recorded first, so an interrupted join is
 * undone from the record.
 */
export const writeAgentFilesStep: JoinStep = {
  title: 'write the agent config',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = connected(target)
    const spec = agentSpecFor(worker, run.server, facts, run.cluster)
    const {note} = nodeAddresses(worker, facts)
    if (note) handle.logger.info(note)
    const token = run.token
    // Without a token (a dry run before the first up) every file is to be written.
    const differing = token ? await differingFiles(host, agentFiles(spec, token)) : undefined
    if (differing?.length === 0) {
      handle.logger.debug('the agent config and token are as they should be')
      return
    }
    const service = chooseService(worker.service, facts)
    await run.ctx.wet(worker.name, `write ${WORKER_PATHS.config} and ${WORKER_PATHS.token} (0600)`, async () => {
      await recordInstalled(run.cluster, worker, {agent: agentRecord(service, spec)})
      if (!token) return
      target.agentChanged = (await writeAgentFiles(host, spec, token, differing)) || target.agentChanged
    })
  },
}
