import {probeOverlay} from '../probes/overlay.js'
import {probeRoot} from '../probes/root.js'
import {configOnly, probeSignal} from './config-only.js'
import type {Workaround} from './workaround.js'

/** containerd's overlayfs snapshotter refuses a data dir on 9p; the native snapshotter copies instead. */
export const snapshotter: Workaround = {
  id: 'snapshotter',
  blocker: "containerd's overlayfs snapshotter refuses the data dir's filesystem (9p)",
  remedy: '--snapshotter=native',
  failurePattern: /overlayfs snapshotter|snapshotter "?overlayfs|failed to mount overlay|overlay.*not supported/i,
  appliesTo: (ctx) => ctx.agent,
  async probe(ctx) {
    const facts = await probeOverlay(ctx.dataDir, await probeRoot(), probeSignal(ctx))
    if (!facts.tried) return {found: true, evidence: `${facts.evidence}; assumed refused`, details: {...facts}}
    return {found: !facts.mounted || facts.dType === false, evidence: facts.evidence, details: {...facts}}
  },
  ...configOnly('snapshotter'),
  serverConfig: () => ({snapshotter: 'native'}),
}
