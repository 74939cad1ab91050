import {HybridError} from '../../errors.js'
import {WORKAROUND_IDS, type WorkaroundName, type WorkaroundsSetting} from '../../inventory/schema.js'
import {cadvisor} from './cadvisor.js'
import {cgroups} from './cgroups.js'
import {cnibin} from './cnibin.js'
import {egress} from './egress.js'
import {flannel} from './flannel.js'
import {iptables} from './iptables.js'
import {kmsg} from './kmsg.js'
import {procsys} from './procsys.js'
import {snapshotter} from './snapshotter.js'
import {taint} from './taint.js'
import type {ProbeFinding, Workaround, WorkaroundContext} from './workaround.js'

export type {AppliedRecord, ProbeFinding, ServerConfigFragment, Workaround, WorkaroundContext} from './workaround.js'

/** Each workaround under its id: the compiler checks that every id of the inventory schema has one. */
const BY_ID: {readonly [id in WorkaroundName]: Workaround} = {
  snapshotter,
  cadvisor,
  procsys,
  kmsg,
  flannel,
  egress,
  taint,
  cgroups,
  iptables,
  cnibin,
}

/**
 * Every workaround, in the schema's order (that of docs/architecture.md, "Workarounds"): the order they
 * are applied in (and undone in reverse).
 */
export const WORKAROUNDS: readonly Workaround[] = Object.freeze(WORKAROUND_IDS.map((id) => BY_ID[id]))

export function workaroundById(id: string): Workaround {
  const workaround = WORKAROUNDS.find((w) => w.id === id)
  if (!workaround)
    throw new HybridError(
      'WORKAROUND_UNKNOWN',
      `unknown workaround "${id}" (known: ${WORKAROUNDS.map((w) => w.id).join(', ')})`,
    )
  return workaround
}

/**
 * The workarounds `up` applies under the inventory's setting, exactly (docs/architecture.md, "Workarounds"), in registry order:
 * `auto` those that concern this control plane and whose probe found the blocker; `all` every one that
 * concerns it; `none` none; a list exactly those named, whatever the probes say.
 */
export function selectWorkarounds(
  setting: WorkaroundsSetting,
  ctx: WorkaroundContext,
  findings: ReadonlyMap<string, ProbeFinding>,
  registry: readonly Workaround[] = WORKAROUNDS,
): Workaround[] {
  if (setting === 'none') return []
  if (setting === 'all') return registry.filter((w) => w.appliesTo(ctx))
  if (setting === 'auto') return registry.filter((w) => w.appliesTo(ctx) && findings.get(w.id)?.found === true)
  const listed = new Set<string>(setting as readonly WorkaroundName[])
  const unknown = [...listed].filter((id) => !registry.some((w) => w.id === id))
  if (unknown.length > 0)
    throw new HybridError(
      'WORKAROUND_UNKNOWN',
      `unknown workaround${unknown.length > 1 ? 's' : ''} ${unknown.map((id) => `"${id}"`).join(', ')} (known: ${registry.map((w) => w.id).join(', ')})`,
    )
  return registry.filter((w) => listed.has(w.id))
}
