import {type KubeConfig, VersionApi} from '@kubernetes/client-node'

import {HybridError} from '../errors.js'
import {kubeConfigFromFile} from '../kube/client.js'
import {waitNodeOnVersion} from '../kube/node-version.js'
import {pollUntil} from '../kube/readiness.js'
import type {Phase} from '../plan/index.js'
import {readState} from '../state/cluster-state.js'
import {readUpgradeRequest, writeUpgradeRequest} from '../state/server-upgrade.js'
import {controlPlaneSettings} from '../state/settings.js'
import {
  CONTROL_PLANE_HOST,
  type ClusterContext,
  type InventoryInput,
  type K3sBinary,
  type UpgradeInput,
} from './context.js'

/** How long the supervisor may take to notice the request (it looks every second). */
const TAKE_UP_MS = 30_000

/** How long the server may take to be Ready on the new binary: HYBRID_READY_TIMEOUT_SECONDS, default 5 minutes. */
function readyTimeoutMs(): number {
  const seconds = Number(process.env.HYBRID_READY_TIMEOUT_SECONDS)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 300_000
}

/**
 * The server goes first (docs/architecture.md, "Upgrades"): ask the running supervisor to restart k3s on
 * the new binary (state/server-upgrade.ts), then wait until the server's own Node is Ready on the new
 * version (an agentless server: until its API answers /version with it). The same data dir and config, so
 * the datastore, certificates and tokens stay. A server already on the new binary (a rollout resumed) is
 * only waited for.
 */
export const upgradeServer: Phase<ClusterContext & InventoryInput & K3sBinary & UpgradeInput, object> = {
  title: 'upgrade the server',
  async run(ctx) {
    const {from, to} = ctx.upgrade
    const state = await readState(ctx.cluster)
    const binary = ctx.k3s?.path ?? ctx.inventory.k3s.binary ?? `k3s ${to}`
    const restart = state?.launch?.binary !== binary
    const sentence = restart
      ? `restart the k3s server on k3s ${to} (it runs ${from}) under its supervisor (pid ${state?.supervisor?.pid}), and wait until it is Ready`
      : `wait until the k3s server is Ready on k3s ${to}`
    await ctx.wet(CONTROL_PLANE_HOST, sentence, async () => {
      const startedAt = state?.upgrade?.startedAt ?? new Date().toISOString()
      await writeUpgradeRequest(ctx.cluster, {
        binary,
        settings: controlPlaneSettings(ctx.inventory),
        upgrade: {from: state?.upgrade?.from ?? from, to, startedAt},
      })
      await pollUntil(
        `the supervisor (pid ${state?.supervisor?.pid}) taking up the upgrade`,
        async () => ((await readUpgradeRequest(ctx.cluster)) ? undefined : true),
        {timeoutMs: TAKE_UP_MS, signal: ctx.signal, intervalMs: 250},
      )
      await waitServer(ctx, state?.launch?.nodeName, to)
    })
    return {}
  },
}

async function waitServer(ctx: ClusterContext, nodeName: string | undefined, to: string): Promise<void> {
  const kc = kubeConfigFromFile(ctx.paths.kubeconfig)
  const timeoutMs = readyTimeoutMs()
  if (nodeName) {
    await waitNodeOnVersion(kc, nodeName, to, {timeoutMs, signal: ctx.signal, what: 'the k3s server'})
    return
  }
  let seen = ''
  await pollUntil(
    `the k3s server answering on k3s ${to}`,
    async () => {
      try {
        const response = await fetchVersion(kc)
        seen = response
        return response === to ? true : undefined
      } catch {
        return undefined
      }
    },
    {timeoutMs, signal: ctx.signal, intervalMs: 1000},
  ).catch((error: unknown) => {
    if (ctx.signal.aborted) throw error
    throw new HybridError(
      'K3S_UPGRADE_FAILED',
      `the k3s server did not come back on k3s ${to} within ${Math.round(timeoutMs / 1000)} s (${seen ? `it answers ${seen}` : 'its API does not answer'}); its log is ${ctx.paths.k3sLog}`,
    )
  })
}

async function fetchVersion(kc: KubeConfig): Promise<string> {
  const info = await kc.makeApiClient(VersionApi).getCode()
  return info.gitVersion
}
