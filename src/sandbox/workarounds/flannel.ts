import {probeBridge} from '../probes/bridge.js'
import {configOnly, probeSignal} from './config-only.js'
import type {Workaround} from './workaround.js'

/**
 * flannel in the sandbox needs a promiscuous bridge and vxlan. Without them the server runs no flannel
 * (`flannel-backend: none`) and hybrid installs the CNI on the workers only (docs/architecture.md, "Workers"). Agentless
 * servers run no flannel of their own, and their workers keep k3s's, so it does not apply to them.
 */
export const flannel: Workaround = {
  id: 'flannel',
  blocker: 'bridges cannot be made promiscuous, vxlan unavailable',
  remedy: '--flannel-backend=none; workers get their CNI from hybrid',
  failurePattern: /flannel|promiscuous|vxlan/i,
  appliesTo: (ctx) => ctx.agent,
  async probe(ctx) {
    const facts = await probeBridge(probeSignal(ctx))
    return {found: facts.tried && facts.works === false, evidence: facts.evidence, details: {...facts}}
  },
  ...configOnly('flannel'),
  serverConfig: () => ({'flannel-backend': 'none'}),
}
