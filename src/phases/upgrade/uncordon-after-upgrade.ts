import {uncordonAfterUpgrade} from '../../kube/upgrade-cordon.js'
import type {HostHandle} from '../../plan/index.js'
import {changeWorkerRecord} from '../../state/worker-records.js'
import type {UpgradeTarget} from './upgrade-target.js'

/**
 * Uncordon the Node the upgrade cordoned (a Node cordoned by someone else stays so), then record the
 * worker as upgraded: the next `up` leaves it out of the rollout.
 */
export const uncordonAfterUpgradeStep = {
  title: 'uncordon',
  async run(target: UpgradeTarget, handle: HostHandle): Promise<void> {
    const {run, worker} = target
    await run.ctx.wet(worker.name, `uncordon Node ${worker.name} (on k3s ${target.to})`, async () => {
      if (await uncordonAfterUpgrade(run.kube(), worker.name)) handle.logger.info(`Node ${worker.name} uncordoned`)
      await changeWorkerRecord(run.cluster, worker.name, (r) => (r ? {...r, k3sVersion: target.to} : null))
    })
  },
}
