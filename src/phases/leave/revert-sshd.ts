import type {HostHandle} from '../../plan/index.js'
import {forgetInstalled} from '../../state/worker-records.js'
import {revertRemoteForward} from '../../tunnel/sshd-forwarding.js'
import {hostOf, type LeaveStep, type LeaveTarget} from './leave-target.js'

/** Remove the sshd drop-in hybrid wrote for the tunnel, and reload sshd. */
export const revertSshd: LeaveStep = {
  title: 'revert sshd',
  async run(target: LeaveTarget, _handle: HostHandle) {
    const {run, record} = target
    const dropIn = record.installed.sshdDropIn
    if (!dropIn) return
    await run.ctx.wet(record.worker, `remove ${dropIn.path} and reload sshd`, async () => {
      await revertRemoteForward(await hostOf(target), {dropIn: dropIn.path, written: true})
      await forgetInstalled(run.cluster, record.worker, 'sshdDropIn')
    })
  },
}
