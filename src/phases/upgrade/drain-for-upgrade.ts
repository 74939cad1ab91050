import {drainNode} from '../../kube/drain.js'
import {cordonForUpgrade} from '../../kube/upgrade-cordon.js'
import type {HostHandle} from '../../plan/index.js'
import {stepDeadlineMs} from '../join/join-target.js'
import type {UpgradeTarget} from './upgrade-target.js'

/**
 * Cordon the worker's Node (marked as the upgrade's cordon, unless it was cordoned already) and drain it as
 * `workers remove` does (src/kube/drain.ts: evictions through the eviction API, so PodDisruptionBudgets
 * hold; DaemonSet, mirror and finished pods stay; unmanaged pods are evicted and not recreated; emptyDir
 * data goes), within spec.upgrade.drainTimeoutSeconds; past it the worker fails (DRAIN_BLOCKED) and nothing
 * after the drain ran on it: it keeps its old k3s.
 */
export const drainForUpgrade = {
  title: 'cordon and drain',
  deadlineMs: (t: UpgradeTarget) => stepDeadlineMs(t, t.run.inventory.upgrade.drainTimeoutSeconds * 1000),
  async run(target: UpgradeTarget, handle: HostHandle): Promise<void> {
    const {run, worker} = target
    const seconds = run.inventory.upgrade.drainTimeoutSeconds
    const sentence = `${target.batch}: cordon and drain Node ${worker.name} for k3s ${target.to} (PodDisruptionBudgets respected, at most ${seconds} s)`
    await run.ctx.wet(worker.name, sentence, async () => {
      const kc = run.kube()
      await cordonForUpgrade(kc, worker.name, target.to)
      const {evicted} = await drainNode(kc, worker.name, {
        timeoutMs: seconds * 1000,
        signal: handle.signal,
        timeoutSetting: 'spec.upgrade.drainTimeoutSeconds',
        onRefused: (message) => handle.logger.warn(message),
      })
      handle.logger.info({evicted}, `Node ${worker.name} drained for k3s ${target.to}`)
    })
  },
}
