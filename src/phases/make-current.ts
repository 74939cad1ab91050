import type {Phase} from '../plan/index.js'
import {currentCluster, setCurrentCluster} from '../state/current.js'
import {CONTROL_PLANE_HOST, type ClusterContext} from './context.js'

/** The cluster becomes the one commands use without `--inventory`. */
export const makeCurrent: Phase<ClusterContext> = {
  title: 'make it the current cluster',
  shouldRun: async (ctx) => (await currentCluster()) !== ctx.cluster || {skip: 'it already is'},
  async run(ctx) {
    await ctx.wet(CONTROL_PLANE_HOST, `make ${ctx.cluster} the cluster commands use without --inventory`, () =>
      setCurrentCluster(ctx.cluster),
    )
  },
}
