import type {Inventory, K3sSettings} from '../inventory/model.js'

/** JSON with object keys sorted, so equal settings always give the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** What the state keeps of the inventory (`up` compares it; `preflight` probes a running cluster's data dir with it). */
export type StoredSettings = Pick<Inventory, 'name' | 'token' | 'controlPlane' | 'network'> & {
  readonly k3s: Omit<K3sSettings, 'distribute'>
}

/**
 * The settings that shape the control plane, as stored in the state: a second `up` whose settings equal
 * the stored ones changes nothing. Workers are converged separately and are not part of it.
 */
export function controlPlaneSettings(inventory: Inventory): StoredSettings {
  // How the binary reaches the workers shapes no control plane: a change applies at the next join.
  const k3s: {-readonly [K in keyof K3sSettings]?: K3sSettings[K]} = {...inventory.k3s}
  delete k3s.distribute
  return {
    name: inventory.name,
    k3s: k3s as Omit<K3sSettings, 'distribute'>,
    token: inventory.token,
    // Where snapshots go is no setting of k3s's: changing it needs no `down`.
    controlPlane: {...inventory.controlPlane, snapshots: undefined},
    network: inventory.network,
  }
}

/** The top-level settings (`k3s`, `controlPlane.apiPort`, …) whose values differ, for a one-sentence error. */
export function changedSettings(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  prefix = '',
): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  const changed: string[] = []
  for (const key of keys) {
    const a = before[key]
    const b = after[key]
    if (canonical(a) === canonical(b)) continue
    const path = prefix ? `${prefix}.${key}` : key
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      changed.push(...changedSettings(a as Record<string, unknown>, b as Record<string, unknown>, path))
    } else changed.push(path)
  }
  return changed
}
