import {SERVICES} from '../../agent/service.js'
import {uninstallAgent} from '../../agent/install.js'
import {removePaths} from '../../agent/worker-files.js'
import type {HostHandle} from '../../plan/index.js'
import {forgetInstalled} from '../../state/worker-records.js'
import {hostOf, type LeaveStep, type LeaveTarget} from './leave-target.js'

/**
 * Stop the agent and remove what its record lists (service, config, token, binary, data), or with
 * --keep-installed only stop it. Nothing recorded: nothing to do.
 */
export const uninstallAgentStep: LeaveStep = {
  title: 'uninstall the agent',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const agent = record.installed.agent
    const extras = record.installed.extras ?? []
    if (!agent && !record.installed.binary && extras.length === 0) return
    const host = await hostOf(target)
    if (extras.length > 0 && !run.keepInstalled)
      // registries.yaml, uploaded files and image archives: exactly those hybrid wrote.
      await run.ctx.wet(record.worker, `remove ${extras.map((e) => e.path).join(', ')}`, async () => {
        await removePaths(
          host,
          extras.map((e) => e.path),
        )
        await forgetInstalled(run.cluster, record.worker, 'extras')
      })
    if (!agent && !record.installed.binary) return
    if (!agent) {
      await run.ctx.wet(record.worker, `remove ${record.installed.binary?.path}`, async () => {
        if (!run.keepInstalled && record.installed.binary)
          await host.check(['rm', '-f', '--', record.installed.binary.path], {sudo: true})
        await forgetInstalled(run.cluster, record.worker, 'binary')
      })
      return
    }
    if (run.keepInstalled) {
      await run.ctx.wet(record.worker, `stop the k3s agent (${agent.service}); keep it installed`, async () => {
        const wasRunning = await SERVICES[agent.service].stop(host)
        handle.logger.info(`k3s agent ${wasRunning ? 'stopped' : 'was not running'}`)
      })
      return
    }
    await run.ctx.wet(record.worker, `stop and uninstall the k3s agent (${agent.service}) and its files`, async () => {
      await uninstallAgent(host, agent)
      await forgetInstalled(run.cluster, record.worker, 'agent')
      await forgetInstalled(run.cluster, record.worker, 'binary')
    })
  },
}
