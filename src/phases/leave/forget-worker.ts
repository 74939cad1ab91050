import type {HostHandle} from '../../plan/index.js'
import {changeWorkerRecord} from '../../state/worker-records.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/** Everything recorded is undone: the record goes (a removal that stopped earlier keeps it, and resumes). */
export const forgetWorker: LeaveStep = {
  title: 'forget the worker',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    const kept = run.keepInstalled ? ' (its k3s stays installed, stopped)' : ''
    await run.ctx.wet(record.worker, `forget worker ${record.worker}${kept}`, async () => {
      await changeWorkerRecord(run.cluster, record.worker, () => null)
      handle.logger.debug('record removed')
    })
  },
}
