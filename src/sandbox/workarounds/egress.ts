import {configOnly} from './config-only.js'
import type {Workaround} from './workaround.js'

/**
 * The apiserver in the sandbox cannot dial pods or services on the workers (no inbound path in tunnel
 * mode, no node of its own when agentless); with `cluster` it reaches them through the agents' own
 * connections to the server.
 */
export const egress: Workaround = {
  id: 'egress',
  blocker: 'the apiserver cannot reach pods or services directly',
  remedy: '--egress-selector-mode=cluster',
  appliesTo: () => true,
  async probe(ctx) {
    if (ctx.networkMode === 'tunnel')
      return {found: true, evidence: 'tunnel mode: workers are reached only through their SSH tunnels'}
    if (!ctx.agent)
      return {found: true, evidence: 'agentless server: it has no node of its own from which to reach pods'}
    return {found: false, evidence: 'direct mode with an agent: the apiserver may reach pods directly'}
  },
  ...configOnly('egress'),
  serverConfig: () => ({'egress-selector-mode': 'cluster'}),
}
