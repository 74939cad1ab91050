import {k3sKubeconfigPath, sandboxNodeName, serverConfigPath} from '../k3s/server-config.js'
import type {Phase} from '../plan/index.js'
import {type LaunchSpec, updateState} from '../state/cluster-state.js'
import {
  CONTROL_PLANE_HOST,
  type ChosenWorkarounds,
  type ClusterContext,
  type InventoryInput,
  type K3sBinary,
  type Launched,
  type OwnedState,
  type ServerConfigWritten,
} from './context.js'

/**
 * How the supervisor starts k3s (binary, arguments, interceptor rules, environment), from the applied
 * workarounds' records, recorded in the state before anything starts: the detached supervisor, `status`
 * and `down` then know exactly what runs.
 */
export const recordLaunch: Phase<
  ClusterContext & InventoryInput & OwnedState & ChosenWorkarounds & K3sBinary & ServerConfigWritten,
  Launched & OwnedState
> = {
  title: 'record how k3s starts',
  async run(ctx) {
    const launch = launchSpec(ctx)
    const sentence = `record in ${ctx.paths.state} how k3s starts`
    const state = await ctx.wet(CONTROL_PLANE_HOST, sentence, () =>
      updateState(ctx.cluster, (s) => ({...s, launch, phase: 'starting'})),
    )
    return {launch, state: state ?? ctx.state}
  },
}

function launchSpec(
  ctx: InventoryInput & OwnedState & ChosenWorkarounds & K3sBinary & ServerConfigWritten,
): LaunchSpec {
  const {inventory, workaroundContext} = ctx
  const dataDir = inventory.controlPlane.dataDir
  const rules: unknown[] = []
  const env: Record<string, string> = {}
  for (const workaround of ctx.selected) {
    const record = ctx.state.workarounds.find((r) => r.id === workaround.id)
    if (!record) continue // under --dry-run nothing was applied
    rules.push(...(workaround.interceptRules?.(workaroundContext, record) ?? []))
    Object.assign(env, workaround.environment?.(workaroundContext, record) ?? {})
  }
  return {
    binary: ctx.k3s?.path ?? inventory.k3s.binary ?? `k3s ${inventory.k3s.version}`,
    args: ['server', '--config', serverConfigPath(dataDir), ...ctx.serverConfig.commandLine],
    rules,
    env,
    k3sKubeconfig: k3sKubeconfigPath(dataDir),
    ...(inventory.controlPlane.agent ? {nodeName: sandboxNodeName(inventory.name)} : {}),
  }
}
