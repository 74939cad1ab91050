import {describeFilesystem, probeFilesystem} from '../probes/filesystem.js'
import {configOnly} from './config-only.js'
import type {Workaround} from './workaround.js'

/**
 * cAdvisor finds the kubelet's filesystem by its block device; on 9p (or any anonymous device) it finds
 * none, image GC and local-storage capacity isolation then fail, so both are turned off.
 */
export const cadvisor: Workaround = {
  id: 'cadvisor',
  blocker: 'cAdvisor cannot read root filesystem stats',
  remedy:
    '--kubelet-arg=local-storage-capacity-isolation=false, image-gc-high-threshold=100, image-gc-low-threshold=99',
  failurePattern: /rootfs|cAdvisor|cadvisor/,
  appliesTo: (ctx) => ctx.agent,
  async probe(ctx) {
    const facts = await probeFilesystem(ctx.dataDir)
    const why = facts.statsReadable
      ? ''
      : facts.error
        ? ''
        : ': no block device behind it, so cAdvisor finds no stats for it'
    return {found: !facts.statsReadable, evidence: `${describeFilesystem(facts)}${why}`, details: {...facts}}
  },
  ...configOnly('cadvisor'),
  serverConfig: () => ({
    'kubelet-arg': [
      'local-storage-capacity-isolation=false',
      'image-gc-high-threshold=100',
      'image-gc-low-threshold=99',
    ],
  }),
}
