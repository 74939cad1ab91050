import {readFile} from 'node:fs/promises'

import {sandboxCniConfig} from '../k3s/sandbox-cni.js'
import {buildServerConfig, serverConfigPath, writeServerConfig} from '../k3s/server-config.js'
import type {Phase} from '../plan/index.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {
  CONTROL_PLANE_HOST,
  type ChosenWorkarounds,
  type ClusterContext,
  type InventoryInput,
  type OwnedState,
  type ServerConfigWritten,
  type TokenFile,
} from './context.js'

/**
 * `<dataDir>/config.yaml` from the inventory and the applied workarounds (src/k3s/server-config.ts), and
 * without flannel a loopback CNI config for the server's own kubelet (src/k3s/sandbox-cni.ts).
 */
export const writeServerConfigPhase: Phase<
  ClusterContext & InventoryInput & OwnedState & ChosenWorkarounds & TokenFile,
  ServerConfigWritten
> = {
  title: 'write the k3s server config',
  async run(ctx) {
    const {inventory, workaroundContext} = ctx
    const serverConfig = buildServerConfig({
      inventory,
      tokenFile: ctx.tokenFile,
      agentTokenFile: ctx.agentTokenFile,
      fragments: ctx.selected.map((w) => w.serverConfig(workaroundContext)),
      addresses: ctx.state.location?.addresses,
    })
    const path = serverConfigPath(inventory.controlPlane.dataDir)
    const keys = Object.keys(serverConfig.config).join(', ')
    await ctx.wet(CONTROL_PLANE_HOST, `write ${path} (0600) with ${keys}`, () =>
      writeServerConfig(path, serverConfig.config),
    )
    const cni = sandboxCniConfig(inventory.controlPlane.dataDir, serverConfig.config, inventory.controlPlane.agent)
    if (cni && (await readFile(cni.path, 'utf8').catch(() => '')) !== cni.content) {
      const sentence = `write ${cni.path} (the server's own kubelet gets a loopback-only network without flannel)`
      await ctx.wet(CONTROL_PLANE_HOST, sentence, () => writeFileAtomic(cni.path, cni.content, 0o644))
    }
    if (serverConfig.commandLine.length > 0)
      ctx.logger.info(`extraArgs passed on the k3s command line: ${serverConfig.commandLine.join(' ')}`)
    return {serverConfig}
  },
}
