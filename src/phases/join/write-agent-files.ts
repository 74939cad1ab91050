import {agentSpecFor} from '../../agent/agent-config.js'
import {agentFiles, agentRecord, writeAgentFiles} from '../../agent/install.js'
import {workerNodePassword} from '../../agent/node-password.js'
import {chooseService} from '../../agent/service.js'
import {differingFiles} from '../../agent/worker-files.js'
import {WORKER_PATHS} from '../../agent/worker-paths.js'
import type {HostHandle} from '../../plan/index.js'
import {changeWorkerRecord, newWorkerRecord, readWorkerRecord} from '../../state/worker-records.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'

/**
 * /etc/rancher/k3s/config.yaml (server, node name, labels, taints, node IP), the token file and the node
 * password (/etc/rancher/node/password, hybrid's: agent/node-password.ts), all 0600 root's. The secrets go
 * into their files over the connection's stdin: never into argv, an environment or a log. What the agent
 * install will put on the worker, and the node password, are recorded first, so an interrupted join is
 * undone from the record and a replaced host gets the same password.
 */
export const writeAgentFilesStep: JoinStep = {
  title: 'write the agent config',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = connected(target)
    const spec = agentSpecFor(worker, run.server)
    const token = run.token
    const recorded = (await readWorkerRecord(run.cluster, worker.name))?.nodePassword
    const nodePassword = await workerNodePassword(host, recorded)
    // Without a token (a dry run before the first up) every file is to be written.
    const differing = token ? await differingFiles(host, agentFiles(spec, token, nodePassword)) : undefined
    if (differing?.length === 0 && recorded) {
      handle.logger.debug('the agent config, token and node password are as they should be')
      return
    }
    const service = chooseService(worker.service, facts)
    const files = `${WORKER_PATHS.config} and ${WORKER_PATHS.token}, and the node password ${WORKER_PATHS.nodePassword}`
    await run.ctx.wet(worker.name, `write ${files} (0600)`, async () => {
      await changeWorkerRecord(run.cluster, worker.name, (r) => {
        const base = r ?? newWorkerRecord(worker)
        return {...base, spec: worker, nodePassword, installed: {...base.installed, agent: agentRecord(service, spec)}}
      })
      if (!token || differing?.length === 0) return
      target.agentChanged = (await writeAgentFiles(host, spec, token, differing)) || target.agentChanged
    })
  },
}
