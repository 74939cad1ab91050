import {isIPv4, isIPv6} from 'node:net'

import type {Logger} from 'pino'

import {hasProgram} from '../../agent/binary-fetch.js'
import {fetchFromPeer, type HoldingHost, type PeerServer, startPeerServer} from '../../agent/peer-copy.js'
import {WORKER_PATHS} from '../../agent/worker-paths.js'
import {cannotDownload, downloadOnWorker} from '../../agent/worker-download.js'
import {messageOf} from '../../errors.js'
import type {K3sDistribute, K3sSettings, WorkerSpec} from '../../inventory/model.js'
import type {AcquiredBinary} from '../../k3s/acquire.js'
import {releaseUrls} from '../../k3s/release-download.js'
import type {HostFacts, K3sArch} from '../../remote/facts.js'
import {remoteLimits} from '../../remote/limits.js'

/**
 * How the k3s binary reaches the workers of one join (spec.k3s.distribute; docs/architecture.md,
 * "Distributing the k3s binary"). `coordinator`: hybrid uploads it to each. `peers`: within each group
 * the first worker (inventory order) gets the upload and serves its placed binary to the others for as
 * long as one of them still needs it. `worker-download`: each worker fetches the release itself. Every
 * route a worker takes checks the sha256 hybrid knows before the rename; a worker that cannot take its
 * route (no perl, no curl or wget, no route to the peer or the release, another digest) says why in the
 * log and gets the binary from the coordinator.
 */

/** For tests only: the release base the workers fetch from (else spec.k3s.mirror, else GitHub's releases). */
export const WORKER_RELEASE_URL_ENV = 'HYBRID_WORKER_RELEASE_URL'

/**
 * Which workers reach each other: `workers[].group`, else the /24 of the worker's IPv4 address
 * (internalAddress, else address); a worker with neither (a DNS name, IPv6) is a group of its own.
 */
export function peerGroup(worker: WorkerSpec): string | undefined {
  if (worker.group) return `group ${worker.group}`
  const ip = worker.internalAddress ?? worker.address
  return isIPv4(ip) ? `${ip.split('.').slice(0, 3).join('.')}.0/24` : undefined
}

interface Group {
  readonly key: string
  readonly seed: string
  /** The others, until each has its binary or has failed. */
  readonly pending: Set<string>
  readonly served: Promise<Served | undefined>
  settle(served: Served | undefined): void
}

interface Served {
  readonly server: PeerServer
  readonly sha256: string
}

/** One worker as the distribution sees it (the connected host and its facts). */
export interface DistributionTarget {
  readonly worker: WorkerSpec
  readonly host: HoldingHost
  readonly facts: HostFacts
  readonly logger: Logger
}

export class K3sDistribution {
  private readonly groups = new Map<string, Group>()

  constructor(
    readonly mode: K3sDistribute,
    private readonly k3s: Pick<K3sSettings, 'version' | 'mirror'>,
    workers: readonly WorkerSpec[],
  ) {
    if (mode !== 'peers') return
    const byKey = new Map<string, string[]>()
    for (const worker of workers) {
      const key = peerGroup(worker)
      if (key) byKey.set(key, [...(byKey.get(key) ?? []), worker.name])
    }
    for (const [key, [seed, ...others]] of byKey) {
      if (others.length === 0) continue
      let settle!: (served: Served | undefined) => void
      const served = new Promise<Served | undefined>((resolve) => (settle = resolve))
      const group: Group = {key, seed, pending: new Set(others), served, settle}
      for (const name of [seed, ...others]) this.groups.set(name, group)
    }
  }

  /** The peer a worker waits for, when it gets the binary from one. */
  peerOf(worker: string): string | undefined {
    const group = this.groups.get(worker)
    return group && group.seed !== worker ? group.seed : undefined
  }

  /** What the upload step will do, as its --dry-run sentence says it. */
  plan(worker: WorkerSpec, what: string, arch: K3sArch): string {
    const upload = `upload ${what} to ${WORKER_PATHS.binary} (0755)`
    const group = this.groups.get(worker.name)
    if (this.mode === 'worker-download')
      return `download ${what} on the worker from ${this.releaseUrl(arch) ?? 'the release'} into ${WORKER_PATHS.binary} (else ${upload})`
    if (!group) return upload
    if (group.seed === worker.name) return `${upload}, and serve it to ${group.pending.size} peer(s) of ${group.key}`
    return `fetch ${what} from peer ${group.seed} into ${WORKER_PATHS.binary} (else ${upload})`
  }

  /**
   * Put the binary in place by the worker's own route; false when the coordinator must upload it (the
   * log says why).
   */
  async deliver(target: DistributionTarget, binary: AcquiredBinary): Promise<boolean> {
    if (this.mode === 'worker-download') return this.download(target, binary)
    const group = this.groups.get(target.worker.name)
    if (!group || group.seed === target.worker.name) return false
    return this.fromPeer(target, group, binary)
  }

  /** After a seed's binary is in place: serve it while others of its group still need it. */
  async serve(target: DistributionTarget, binary: AcquiredBinary): Promise<void> {
    const {worker, host, facts, logger} = target
    const group = this.groups.get(worker.name)
    if (!group || group.seed !== worker.name) return
    if (group.pending.size === 0) return group.settle(undefined)
    try {
      if (!(await hasProgram(host, 'perl'))) throw new Error(`${worker.name} has no perl to serve k3s with`)
      const address = worker.internalAddress ?? worker.address
      const local = facts.interfaceAddresses?.some((a) => a.address === address)
      const server = await startPeerServer(host, {
        file: WORKER_PATHS.binary,
        bind: local ? address : isIPv6(address) ? '::' : '0.0.0.0',
        address,
        limitSeconds: remoteLimits(worker.ssh).uploadTimeoutSeconds * 2,
      })
      group.settle({server, sha256: binary.sha256})
      logger.info({port: server.source.port, peers: [...group.pending]}, `serving k3s to the others of ${group.key}`)
      // Every peer may have finished (or failed) while the server started.
      if (group.pending.size === 0) await server.stop()
    } catch (error) {
      logger.warn(`${messageOf(error)}; the others of ${group.key} get k3s from the coordinator`)
      group.settle(undefined)
    }
  }

  /** The worker needs no peer any more (it has its binary, or failed): the last one stops its group's server. */
  left(worker: string): void {
    const group = this.groups.get(worker)
    if (!group) return
    if (group.seed === worker) {
      // A seed that failed before serving: nobody waits for it (a no-op once it served).
      group.settle(undefined)
      return
    }
    group.pending.delete(worker)
    if (group.pending.size === 0) void group.served.then((served) => served?.server.stop())
  }

  /** The end of the join: every server stopped, whatever happened. */
  async stopAll(): Promise<void> {
    const groups = new Set(this.groups.values())
    for (const group of groups) group.settle(undefined)
    await Promise.all([...groups].map((group) => group.served.then((served) => served?.server.stop())))
  }

  private async fromPeer(target: DistributionTarget, group: Group, binary: AcquiredBinary): Promise<boolean> {
    const {worker, host, logger} = target
    const served = await group.served
    const fallback = (why: string) => {
      logger.warn(`${worker.name}: ${why}, so k3s is uploaded from the coordinator`)
      return false
    }
    if (!served) return fallback(`peer ${group.seed} does not serve k3s`)
    if (served.sha256 !== binary.sha256)
      return fallback(`peer ${group.seed} serves another build (another architecture)`)
    if (!(await hasProgram(host, 'perl'))) return fallback('it has no perl to fetch k3s from its peer with')
    try {
      await fetchFromPeer(host, served.server.source, binary.sha256, remoteLimits(worker.ssh).uploadTimeoutSeconds)
    } catch (error) {
      return fallback(messageOf(error))
    }
    logger.info({peer: group.seed}, `k3s fetched from peer ${group.seed}`)
    return true
  }

  private async download(target: DistributionTarget, binary: AcquiredBinary): Promise<boolean> {
    const {worker, host, facts, logger} = target
    const fallback = (why: string) => {
      logger.warn(`${worker.name}: ${why}, so k3s is uploaded from the coordinator`)
      return false
    }
    const url = facts.arch.k3s && this.releaseUrl(facts.arch.k3s)
    if (!url) return fallback(`k3s publishes no release for ${facts.arch.machine} that hybrid knows`)
    const cannot = await cannotDownload(host)
    if (cannot) return fallback(cannot)
    try {
      await downloadOnWorker(host, url, binary.sha256, remoteLimits(worker.ssh).uploadTimeoutSeconds)
    } catch (error) {
      return fallback(messageOf(error))
    }
    logger.info({url}, 'k3s downloaded by the worker')
    return true
  }

  private releaseUrl(arch: K3sArch): string | undefined {
    if (arch === 'arm') return undefined
    const base = process.env[WORKER_RELEASE_URL_ENV] || this.k3s.mirror
    return releaseUrls(this.k3s.version, arch, base).asset
  }
}
