import {pollUntil} from '../../kube/readiness.js'
import type {HostHandle} from '../../plan/index.js'
import {isAlive} from '../../util/processes.js'
import {readTunnels} from '../../state/tunnel-status.js'
import {changeWorkerRecord} from '../../state/worker-records.js'
import type {LeaveStep, LeaveTarget} from './leave-target.js'

/**
 * Take the tunnel request out of the worker's record, and wait until the supervisor that keeps the
 * tunnels has closed it (it reads the records several times a second). With no live supervisor there is nothing
 * to wait for: its tunnels ended with it.
 */
export const closeTunnel: LeaveStep = {
  title: 'close the tunnel',
  async run(target: LeaveTarget, handle: HostHandle) {
    const {run, record} = target
    if (!record.tunnel) return
    await run.ctx.wet(record.worker, `close the API tunnel to ${record.worker}`, async () => {
      await changeWorkerRecord(run.cluster, record.worker, (r) =>
        r ? {...r, phase: 'removing', tunnel: undefined} : null,
      )
      await pollUntil(
        `the supervisor closing the tunnel to ${record.worker}`,
        async () => {
          const file = await readTunnels(run.cluster)
          const open = file && file.tunnels.some((t) => t.worker === record.worker) && (await isAlive(file.pid))
          return open ? undefined : true
        },
        {timeoutMs: run.timeouts.tunnelMs, signal: handle.signal, intervalMs: 250},
      )
    })
  },
}
