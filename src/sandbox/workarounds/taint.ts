import {configOnly} from './config-only.js'
import type {Workaround} from './workaround.js'

export const SANDBOX_LABEL = 'hybrid.dev/sandbox=true'
export const SANDBOX_TAINT = `${SANDBOX_LABEL}:NoSchedule`

/**
 * Pods cannot start in the sandbox, so its Node is tainted. Not with the usual control-plane taint:
 * k3s's own system pods (CoreDNS, metrics-server, local-path) tolerate that one and would be stuck here.
 */
export const taint: Workaround = {
  id: 'taint',
  blocker: 'pods cannot start in the sandbox',
  remedy: `--node-taint=${SANDBOX_TAINT} and the label ${SANDBOX_LABEL}`,
  appliesTo: (ctx) => ctx.agent,
  async probe(ctx) {
    return ctx.agent
      ? {found: true, evidence: 'the control plane runs an agent, so pods could be scheduled onto the sandbox Node'}
      : {found: false, evidence: 'agentless: the sandbox has no Node'}
  },
  ...configOnly('taint'),
  serverConfig: () => ({'node-taint': [SANDBOX_TAINT], 'node-label': [SANDBOX_LABEL]}),
}
