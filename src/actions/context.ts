import type {Logger} from '../log/logger.js'
import {createPlanContext, type Progress} from '../plan/index.js'
import type {ClusterContext} from '../phases/context.js'
import {clusterPaths} from '../state/cluster-state.js'

/**
 * What a command hands an action: where to log, where progress goes, and the signal its first Ctrl-C
 * aborts. The action builds the plan context from it; the command renders what the action returns.
 */
export interface ActionEnv {
  readonly logger: Logger
  readonly progress: Progress
  readonly signal: AbortSignal
  /** For the cluster's run lock (state/run-lock.ts): what this run is, and how long it waits for another. */
  readonly run?: {readonly command: string; readonly waitSeconds: number}
}

/** The base context of every control-plane plan. */
export function clusterContext(
  env: ActionEnv,
  cluster: string,
  options: {readonly dryRun?: boolean; readonly concurrency?: number} = {},
): ClusterContext {
  return {
    ...createPlanContext({logger: env.logger, progress: env.progress, signal: env.signal, ...options}),
    cluster,
    paths: clusterPaths(cluster),
  }
}
