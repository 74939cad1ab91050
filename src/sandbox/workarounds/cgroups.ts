import {probeCgroups} from '../probes/cgroups.js'
import {configOnly} from './config-only.js'
import type {Workaround} from './workaround.js'

/** Without a working cgroup tree the kubelet must not build its per-QoS cgroups nor enforce allocatable. */
export const cgroups: Workaround = {
  id: 'cgroups',
  blocker: 'the kubelet cannot build its QoS cgroup tree (gVisor does not populate cgroup directories)',
  remedy: '--kubelet-arg=cgroups-per-qos=false, --kubelet-arg=enforce-node-allocatable=',
  failurePattern: /QoS|cgroups-per-qos|kubepods/,
  appliesTo: (ctx) => ctx.agent,
  async probe() {
    const facts = await probeCgroups()
    return {found: facts.version === 'none' || facts.childWorks !== true, evidence: facts.evidence, details: {...facts}}
  },
  ...configOnly('cgroups'),
  serverConfig: () => ({'kubelet-arg': ['cgroups-per-qos=false', 'enforce-node-allocatable=']}),
}
