import {acquireK3s} from '../k3s/acquire.js'
import type {Phase} from '../plan/index.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type K3sBinary} from './context.js'

/** The k3s binary: spec.k3s.binary, else the cache, else a verified download (src/k3s/acquire.ts). */
export const acquireK3sBinary: Phase<ClusterContext & InventoryInput, K3sBinary> = {
  title: 'get the k3s binary',
  async run(ctx) {
    const spec = ctx.inventory.k3s
    const acquire = () =>
      acquireK3s(spec, {
        signal: ctx.signal,
        logger: ctx.logger,
        onProgress: (e) =>
          ctx.progress.report({
            event: 'bytes',
            phase: ctx.ledger.phase,
            host: CONTROL_PLANE_HOST,
            step: `k3s from ${e.source}`,
            done: e.bytes,
            total: e.total ?? e.bytes,
          }),
      })
    // A local binary is only checked (nothing changes); a download fills the cache, which a dry run does not.
    const k3s = spec.binary
      ? await acquire()
      : await ctx.wet(
          CONTROL_PLANE_HOST,
          `get k3s ${spec.version} (from the cache, else download it into the cache)`,
          acquire,
        )
    if (k3s) ctx.logger.info({path: k3s.path, source: k3s.source, sha256: k3s.sha256}, `k3s ${k3s.version}`)
    return {k3s}
  },
}
