import {waitNodeOnVersion} from '../../kube/node-version.js'
import type {HostHandle} from '../../plan/index.js'
import {stepDeadlineMs} from '../join/join-target.js'
import type {UpgradeTarget} from './upgrade-target.js'

/** Wait until the worker's Node is Ready with its kubelet on the new version (the restarted agent's). */
export const waitNodeVersion = {
  title: 'wait for the Node on the new version',
  deadlineMs: (t: UpgradeTarget) => stepDeadlineMs(t, t.run.timeouts.nodeReadyMs),
  async run(target: UpgradeTarget, handle: HostHandle): Promise<void> {
    const {run, worker} = target
    if (run.ctx.dryRun) return
    await waitNodeOnVersion(run.kube(), worker.name, target.to, {
      timeoutMs: run.timeouts.nodeReadyMs,
      signal: handle.signal,
      what: `${worker.name}: its Node`,
    })
  },
}
