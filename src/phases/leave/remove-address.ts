import type {HostHandle} from '../../plan/index.js'
import {forgetInstalled} from '../../state/worker-records.js'
import {removeAdvertisedAddress} from '../../tunnel/advertised-address.js'
import {hostOf, type LeaveStep, type LeaveTarget} from './leave-target.js'

/** Take the advertised address off the worker, as its record says it was put there (after the tunnel closed). */
export const removeAddress: LeaveStep = {
  title: 'remove the advertised address',
  async run(target: LeaveTarget, _handle: HostHandle) {
    const {run, record} = target
    const address = record.installed.address
    if (!address) return
    const what = address.created ? `remove ${address.address} from ${address.device}` : `forget ${address.address}`
    await run.ctx.wet(record.worker, what, async () => {
      await removeAdvertisedAddress(await hostOf(target), address)
      await forgetInstalled(run.cluster, record.worker, 'address')
    })
  },
}
