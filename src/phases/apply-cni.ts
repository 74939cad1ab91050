import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {parse} from 'yaml'

import type {ServerConfigMap} from '../k3s/server-config.js'
import {kubeConfigFromFile} from '../kube/client.js'
import {applyObjects, compareObjects} from '../kube/apply.js'
import {clusterCidrOf, cniDecision, flannelManifests} from '../kube/flannel.js'
import type {Phase} from '../plan/index.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput} from './context.js'

/**
 * The workers' CNI (docs/architecture.md, "Networking"): with `flannel-backend: none` on the server (an
 * agent in the sandbox, or spec.network.cni flannel) the agents get no flannel from k3s, so flannel goes
 * on as a DaemonSet through the API, kept off the sandbox's own Node, its pod CIDR the cluster's. Applied
 * before the workers join, so their Nodes can become Ready; a re-run changes nothing.
 */
export const applyCni: Phase<ClusterContext & InventoryInput> = {
  title: 'apply the workers\u2019 CNI',
  async shouldRun(ctx) {
    if (ctx.inventory.workers.length === 0) return {skip: 'the inventory names no worker'}
    const decision = cniDecision({
      cni: ctx.inventory.network.cni,
      agent: ctx.inventory.controlPlane.agent,
      serverConfig: await serverConfig(ctx.inventory.controlPlane.dataDir),
    })
    return decision.apply || {skip: decision.reason}
  },
  async run(ctx) {
    const config = await serverConfig(ctx.inventory.controlPlane.dataDir)
    const objects = flannelManifests({
      clusterCidr: clusterCidrOf(config),
      registry: ctx.inventory.images.flannelRegistry,
    })
    if (ctx.dryRun && !(await kubeReachable(ctx))) {
      await ctx.wet(CONTROL_PLANE_HOST, `apply flannel (${objects.length} objects) through the API`, () => undefined)
      return
    }
    const kc = kubeConfigFromFile(ctx.paths.kubeconfig)
    if ((await compareObjects(kc, objects)).every((o) => o.outcome === 'unchanged')) {
      ctx.logger.debug('flannel is applied as it should be')
      return
    }
    const cidr = clusterCidrOf(config)
    const applied = await ctx.wet(CONTROL_PLANE_HOST, `apply flannel for pod CIDR ${cidr} through the API`, () =>
      applyObjects(kc, objects),
    )
    for (const a of applied ?? []) if (a.outcome !== 'unchanged') ctx.logger.info(`${a.object} ${a.outcome}`)
  },
}

/** The server config `up` wrote (k3s's config.yaml in the data dir); {} when there is none yet. */
async function serverConfig(dataDir: string): Promise<ServerConfigMap> {
  try {
    return (parse(await readFile(join(dataDir, 'config.yaml'), 'utf8')) as ServerConfigMap | null) ?? {}
  } catch {
    return {}
  }
}

async function kubeReachable(ctx: ClusterContext): Promise<boolean> {
  try {
    kubeConfigFromFile(ctx.paths.kubeconfig)
    return true
  } catch {
    return false
  }
}
