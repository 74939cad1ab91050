import {agentSpecFor} from '../../agent/agent-config.js'
import {agentFiles, writeAgentFiles} from '../../agent/install.js'
import {nodeAddresses} from '../../agent/node-addresses.js'
import {workerNodePassword} from '../../agent/node-password.js'
import {chooseService} from '../../agent/service.js'
import {differingFiles, writeWorkerFiles} from '../../agent/worker-files.js'
import {WORKER_PATHS} from '../../agent/worker-paths.js'
import type {HostHandle} from '../../plan/index.js'
import {caOfToken, OWNER_FILE, ownerFile} from '../../remote/ownership.js'
import {readWorkerRecord} from '../../state/worker-records.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'
import {recordAgent} from './record-agent.js'

/**
 * /etc/rancher/k3s/config.yaml (server, node name, labels, taints, the Node's addresses), the token file
 * and the node password (/etc/rancher/node/password, hybrid's: agent/node-password.ts), all 0600 root's,
 * and hybrid's mark (src/remote/ownership.ts). The secrets go into their files over the connection's
 * stdin: never into argv, an environment or a log. What the agent install will put on the worker, and the
 * node password, are recorded first, so an interrupted join is undone from the record and a replaced host
 * gets the same password.
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
    const recorded = (await readWorkerRecord(run.cluster, worker.name))?.nodePassword
    const nodePassword = await workerNodePassword(host, recorded)
    // Without a token (a dry run before the first up) every file is to be written. hybrid's mark goes
    // with them (the next run knows this k3s as its cluster's, another cluster refuses it); a mark alone
    // that differs (a worker joined before marks existed) is written without restarting the agent.
    const mark = {path: OWNER_FILE, content: ownerFile({cluster: run.cluster, ca: caOfToken(token)}), mode: 0o644}
    const differing = token ? await differingFiles(host, [...agentFiles(spec, token, nodePassword), mark]) : undefined
    if (differing?.length === 0 && recorded) {
      handle.logger.debug('the agent config, token, node password and mark are as they should be')
      return
    }
    const agentDiffering = differing?.filter((f) => f.path !== OWNER_FILE)
    const service = chooseService(worker.service, facts)
    const files = `${WORKER_PATHS.config} and ${WORKER_PATHS.token}, and the node password ${WORKER_PATHS.nodePassword}`
    const sentence =
      agentDiffering?.length === 0 ? `mark the agent as this cluster's (${OWNER_FILE})` : `write ${files} (0600)`
    await run.ctx.wet(worker.name, sentence, async () => {
      await recordAgent(target, service, spec, nodePassword)
      if (!token) return
      if (differing?.some((f) => f.path === OWNER_FILE)) await writeWorkerFiles(host, [mark])
      if (agentDiffering?.length)
        target.agentChanged = (await writeAgentFiles(host, spec, token, agentDiffering)) || target.agentChanged
    })
  },
}
