import {HybridError} from '../../errors.js'
import {pollUntil} from '../../kube/readiness.js'
import type {HostHandle} from '../../plan/index.js'
import type {TunnelRequest} from '../../state/worker-records.js'
import {changeWorkerRecord, forgetInstalled, recordInstalled} from '../../state/worker-records.js'
import {ensureAdvertisedAddress, HYBRID_DEVICE} from '../../tunnel/advertised-address.js'
import {allowRemoteForward, remoteForwardNeedsDropIn, SSHD_DROP_IN} from '../../tunnel/sshd-forwarding.js'
import {connected, type JoinStep, type JoinTarget, stepDeadlineMs} from './join-target.js'

/**
 * Tunnel mode (docs/architecture.md, "Tunnels"): make sshd on the worker accept a remote forward bound to
 * the advertised address (a drop-in, when network.manageSshd allows), put that address on the worker,
 * and ask the supervisor for the tunnel by writing it into the worker's record; then wait until the
 * supervisor reports it up. Each part is done only when missing.
 */
export const openTunnel: JoinStep = {
  title: 'open the API tunnel',
  deadlineMs: (t) => stepDeadlineMs(t, t.run.timeouts.tunnelMs),
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    if (run.inventory.network.mode !== 'tunnel') return
    const {host, facts} = connected(target)
    const {advertiseAddress, apiPort} = run.inventory.controlPlane
    const wet = <T>(sentence: string, fn: () => Promise<T>) => run.ctx.wet(worker.name, sentence, fn)

    // Also when sshd already allows it: an earlier hybrid's drop-in, unscoped, is rewritten.
    const scope = {user: worker.ssh.user, address: advertiseAddress, port: apiPort}
    if (await remoteForwardNeedsDropIn(host, scope, facts)) {
      const sentence = `allow ${scope.user}'s remote forward to ${advertiseAddress}:${apiPort} only, in ${SSHD_DROP_IN}, and reload sshd`
      await wet(sentence, async () => {
        // The intent first: a crash between writing the drop-in and recording it would leave it unnamed.
        await recordInstalled(run.cluster, worker, {sshdDropIn: {path: SSHD_DROP_IN}})
        const result = await allowRemoteForward(host, scope, facts)
        if (!result.written) await forgetInstalled(run.cluster, worker.name, 'sshdDropIn')
      })
    }

    const holders = facts.advertiseAddress?.interfaces ?? []
    if (holders.length > 0) {
      // There already: an earlier run's (facts say whether it is hybrid's); recorded again in case that run crashed.
      const device = holders.includes(HYBRID_DEVICE) ? HYBRID_DEVICE : holders.includes('lo') ? 'lo' : holders[0]
      const created = facts.advertiseAddress?.ours === true
      if (!run.ctx.dryRun)
        await recordInstalled(run.cluster, worker, {address: {address: advertiseAddress, device, created}})
    } else {
      await wet(`put ${advertiseAddress}/32 on ${HYBRID_DEVICE} (or lo)`, async () => {
        // The intent first (hybrid0, which removal also checks `lo` for): see removeAdvertisedAddress.
        await recordInstalled(run.cluster, worker, {
          address: {address: advertiseAddress, device: HYBRID_DEVICE, created: true},
        })
        const placed = await ensureAdvertisedAddress(host, advertiseAddress)
        await recordInstalled(run.cluster, worker, {
          address: {address: placed.address, device: placed.device, created: placed.created},
        })
      })
    }

    const wanted: TunnelRequest = {bindAddress: advertiseAddress, bindPort: apiPort, targetPort: apiPort}
    const status = await run.tunnelStatus(worker.name)
    if (status?.state !== 'up') {
      await wet(`open the API tunnel ${advertiseAddress}:${apiPort} on ${worker.name}`, async () => {
        await changeWorkerRecord(run.cluster, worker.name, (r) => (r ? {...r, tunnel: wanted} : null))
        await waitTunnelUp(target, handle)
      })
    } else {
      await changeWorkerRecord(run.cluster, worker.name, (r) => (r && !r.tunnel ? {...r, tunnel: wanted} : (r ?? null)))
    }
  },
}

/** The supervisor reads the records several times a second; wait for it to report this worker's tunnel up. */
async function waitTunnelUp(target: JoinTarget, handle: HostHandle): Promise<void> {
  const {run, worker} = target
  let last: string | undefined
  try {
    await pollUntil(
      `the API tunnel to ${worker.name} coming up`,
      async () => {
        const status = await run.tunnelStatus(worker.name)
        last = status?.lastError ?? last
        return status?.state === 'up' ? true : undefined
      },
      {timeoutMs: run.timeouts.tunnelMs, signal: handle.signal, intervalMs: 250},
    )
  } catch (error) {
    if (handle.signal.aborted || !last) throw error
    throw new HybridError('TUNNEL_DOWN', last)
  }
}
