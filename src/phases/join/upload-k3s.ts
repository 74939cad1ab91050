import {HybridError} from '../../errors.js'
import {remoteLimits} from '../../remote/limits.js'
import type {HostHandle} from '../../plan/index.js'
import {recordInstalled} from '../../state/worker-records.js'
import {uploadK3s as uploadK3sTo} from '../../agent/install.js'
import {WORKER_PATHS} from '../../agent/worker-paths.js'
import {connected, type JoinStep, type JoinTarget, stepDeadlineMs} from './join-target.js'

/**
 * The k3s binary at /usr/local/bin/k3s, for the worker's architecture: put there only when the digest
 * there differs (a re-run sends nothing), by the route spec.k3s.distribute gives it (distribute-k3s.ts:
 * from a peer, downloaded by the worker, else uploaded by hybrid), always through a temp name checked on
 * the host, then renamed. A worker that serves its group's peers starts serving here.
 */
export const uploadK3s: JoinStep = {
  title: 'upload k3s',
  // A worker fetching from a peer may first wait for that peer's own upload.
  deadlineMs: (t) =>
    stepDeadlineMs(
      t,
      remoteLimits(t.worker.ssh).uploadTimeoutSeconds * 1000 * (t.run.distribution.peerOf(t.worker.name) ? 2 : 1),
    ),
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host, facts} = connected(target)
    const arch = facts.arch.k3s
    if (!arch) throw new HybridError('WORKERS_NOT_READY', `${worker.name}: no k3s release for ${facts.arch.machine}`)
    const binary = await run.binary(arch)
    const path = WORKER_PATHS.binary
    const there = await host.run(['sha256sum', path], {sudo: true})
    const digest = there.exitCode === 0 ? there.stdout.split(/\s/)[0] : undefined
    const distribution = {worker, host, facts, logger: handle.logger}
    if (binary && digest === binary.sha256) {
      handle.logger.debug({path, sha256: digest}, 'k3s is already there')
    } else {
      const what = binary
        ? `k3s ${binary.version} (${binary.sha256.slice(0, 12)}…)`
        : `k3s ${run.inventory.k3s.version}`
      await run.ctx.wet(worker.name, run.distribution.plan(worker, what, arch), async () => {
        if (!binary) return
        // The intent first: removing a binary that never arrived is harmless, an unrecorded one is left behind.
        await recordInstalled(run.cluster, worker, {binary: {path, sha256: binary.sha256}})
        const fetched = await run.distribution.deliver(distribution, binary)
        // Both digests are known by now: the upload hashes neither again.
        const sent =
          fetched ||
          (await uploadK3sTo(host, binary.path, {
            sha256: binary.sha256,
            sha256There: digest ?? null,
            contents: () => run.binaryBytes(binary),
            onProgress: (done, total) => handle.bytes(done, total),
          }))
        if (sent) target.agentChanged = true
      })
    }
    if (binary && !run.ctx.dryRun) {
      await recordInstalled(run.cluster, worker, {binary: {path, sha256: binary.sha256}})
      await run.distribution.serve(distribution, binary)
    }
    run.distribution.left(worker.name)
  },
}
