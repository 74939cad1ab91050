import type {Phase} from '../plan/index.js'
import {spawnDetachedSupervisor} from '../sandbox/detached-supervisor.js'
import {startLocalSupervisor} from '../sandbox/supervisor-handle.js'
import {
  CONTROL_PLANE_HOST,
  type ClusterContext,
  type Launched,
  type OwnedState,
  type SupervisionInput,
  type Supervised,
} from './context.js'

/**
 * Start `k3s server --config …` under the supervisor: in this process (foreground `up`, and the detached
 * supervisor itself), or in a detached child (`up --detach`) that outlives this one.
 */
export const startControlPlane: Phase<ClusterContext & OwnedState & Launched & SupervisionInput, Supervised> = {
  title: 'start the k3s server',
  async run(ctx) {
    const {launch, supervision} = ctx
    const how = `${launch.rules.length > 0 ? ' under the interceptor' : ''}${supervision === 'detach' ? ' under a detached supervisor' : ''}`
    const supervisor = await ctx.wet(CONTROL_PLANE_HOST, `start ${launch.binary} ${launch.args.join(' ')}${how}`, () =>
      supervision === 'detach'
        ? spawnDetachedSupervisor({inventoryFile: ctx.state.inventory, paths: ctx.paths, logger: ctx.logger})
        : startLocalSupervisor({
            cluster: ctx.cluster,
            paths: ctx.paths,
            launch,
            logger: ctx.logger,
            detached: supervision === 'detached-child',
          }),
    )
    return {supervisor}
  },
  async cleanUp(ctx) {
    await ctx.supervisor?.stop()
    ctx.supervisor = undefined
  },
}
