import {rm} from 'node:fs/promises'

import type {Phase} from '../plan/index.js'
import {updateState} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ClusterContext} from './context.js'

/**
 * What remains after the supervisor gave up: the state, saying why, for `status` (and `down`, `up`).
 * The reason is part of the phase, so a teardown plan names it: `recordFailure(sentence)`.
 */
export function recordFailure(failure: string): Phase<ClusterContext> {
  return {
    title: 'record why the control plane stopped',
    async run(ctx) {
      await ctx.wet(CONTROL_PLANE_HOST, `record in ${ctx.paths.state} that k3s stopped for good`, async () => {
        await updateState(ctx.cluster, (s) => ({...s, phase: 'stopped', failure}))
        await rm(ctx.paths.pidfile, {force: true})
      })
    },
  }
}
