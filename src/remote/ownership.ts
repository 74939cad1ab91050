/**
 * Whose k3s is on a worker (docs/architecture.md, "Trust and failure model"). hybrid never takes over a
 * k3s it did not install: one from k3s's installer, from an admin, or from another hybrid cluster is
 * refused with a sentence, and left byte for byte as it was, unless the user adopts it on purpose
 * (`workers[].adopt: true`). What hybrid installs carries its mark, the owner file, naming the cluster
 * and its CA (the hash in the join token), so the next run knows it as its own.
 */

/** hybrid's mark on a worker, in hybrid's own directory (removed with it on uninstall). */
export const OWNER_FILE = '/var/lib/rancher/hybrid/owner'

/** The paths whose presence says a k3s was installed there (besides a binary and a service). */
export const K3S_TRACES = ['/var/lib/rancher/k3s', '/etc/rancher/k3s/config.yaml'] as const

export interface Owner {
  readonly cluster: string
  /** sha256 of the cluster's CA (the K10 hash of its join token); null when not known when it was written. */
  readonly ca: string | null
}

/** The owner file's text: `cluster=NAME` and `ca=HASH` lines. */
export function ownerFile(owner: Owner): string {
  return `# Written by hybrid: this worker's k3s agent belongs to this cluster.\ncluster=${owner.cluster}\nca=${owner.ca ?? ''}\n`
}

export function parseOwner(text: string | undefined): Owner | null {
  const cluster = /^cluster=(.+)$/m.exec(text ?? '')?.[1]?.trim()
  if (!cluster) return null
  return {cluster, ca: /^ca=([0-9a-f]{64})$/m.exec(text ?? '')?.[1] ?? null}
}

/** The CA hash a join token carries (K10<sha256>::…), or null. */
export function caOfToken(token: string | undefined): string | null {
  return /^K10([0-9a-f]{64})::/.exec(token ?? '')?.[1] ?? null
}

/** What the facts found of a k3s install (HostFacts' k3s). */
export interface FoundK3s {
  readonly binary: string | null
  readonly version: string | null
  readonly agent: boolean
  readonly traces: readonly string[]
  readonly owner: Owner | null
}

export interface OwnershipContext {
  /** This cluster's name and CA hash (null before its control plane first ran). */
  readonly owner: Owner
  /** This cluster's records say hybrid installed k3s there (its agent or its binary: a join from before the owner
   * file, or one stopped before the mark was written). */
  readonly recorded: boolean
  /** The inventory adopts whatever k3s is there (workers[].adopt). */
  readonly adopt: boolean
}

/**
 * The sentence refusing a worker whose k3s is not this cluster's, or undefined when the worker is free
 * or its k3s is this cluster's own (or adopted).
 */
export function foreignK3s(name: string, k3s: FoundK3s, context: OwnershipContext): string | undefined {
  const traces = [
    ...(k3s.binary ? [`${k3s.binary}${k3s.version ? ` ${k3s.version}` : ''}`] : []),
    ...(k3s.agent ? ['a k3s-agent service'] : []),
    ...k3s.traces,
  ]
  if (traces.length === 0 || context.adopt) return undefined
  const adopt = `or set adopt: true on this worker in the inventory to let hybrid take it over (and remove it on uninstall)`
  const mark = k3s.owner
  if (mark) {
    const same = mark.cluster === context.owner.cluster
    const sameCa = !mark.ca || !context.owner.ca || mark.ca === context.owner.ca
    if (same && sameCa) return undefined
    const which = same ? `another cluster named ${mark.cluster} (another CA)` : `the hybrid cluster ${mark.cluster}`
    return `${name}: its k3s agent belongs to ${which} (${OWNER_FILE}); remove it from that cluster first (hybrid workers remove ${name} there), ${adopt}`
  }
  if (context.recorded) return undefined
  return `${name}: a k3s that hybrid did not install is there (${traces.join(', ')}), and hybrid leaves it alone; uninstall it first (k3s-agent-uninstall.sh), ${adopt}`
}
