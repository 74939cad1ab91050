import {dirname, resolve as resolvePath} from 'node:path'

import {resolveFrom} from '../state/paths.js'
import {resolveAgent, resolveImages, resolveRegistries} from './resolve-agent.js'
import {InventoryError, type Problem} from './errors.js'
import type {Inventory, ResolvedBastion, ResolvedSsh, TokenSource, WorkerSpec} from './model.js'
import type {ClusterDocument, SshSettings, WorkerDocument} from './schema.js'
import {
  type JumpHop,
  type LoadedConfig,
  lookUpSshConfig,
  readSshConfig,
  sshConfigPath,
  SshConfigProblem,
} from './ssh-config.js'

/**
 * From the checked document (defaults already filled in by the schema check) to the Inventory the
 * rest of hybrid reads: `~` and relative paths made absolute against the inventory file's directory,
 * each worker's ssh merged over `spec.ssh`, the bastion completed, dataDir defaulted per cluster.
 */

/** Where a cluster's k3s data lives unless the inventory says otherwise. */
export function defaultDataDir(name: string): string {
  return `/var/lib/hybrid/${name}`
}

/**
 * The ssh keys the inventory sets itself (before the schema's defaults), for `spec.ssh` and each worker's
 * `ssh`: those win over an OpenSSH config's values. Undefined: every key counts as set.
 */
export interface ExplicitSsh {
  readonly spec: ReadonlySet<string>
  readonly workers: ReadonlyArray<ReadonlySet<string>>
}

/** The ssh keys `data` (the YAML as parsed, before defaults) sets, for ExplicitSsh. */
export function explicitSsh(data: unknown): ExplicitSsh {
  const keys = (value: unknown) =>
    new Set(value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [])
  const spec = (data as {spec?: {ssh?: unknown; workers?: unknown}} | null)?.spec
  const workers = Array.isArray(spec?.workers) ? (spec.workers as Array<{ssh?: unknown} | null>) : []
  return {spec: keys(spec?.ssh), workers: workers.map((w) => keys(w?.ssh))}
}

function resolveSsh(
  base: SshSettings,
  overrides: WorkerDocument['ssh'],
  from: (path: string) => string,
  address: string,
  isExplicit: (key: keyof SshSettings) => boolean,
): ResolvedSsh {
  const {config: configSetting, ...merged}: SshSettings = {...base, ...(overrides ?? {})}
  const config = configSetting ? readSshConfig(from(sshConfigPath(configSetting))) : undefined
  const fromConfig = config ? lookUpSshConfig(config, address) : {}
  const pick = <K extends keyof SshSettings>(key: K, value: SshSettings[K] | undefined) => {
    if (value !== undefined && !isExplicit(key)) (merged as Record<string, unknown>)[key] = value
  }
  pick('user', fromConfig.user)
  pick('port', fromConfig.port)
  pick('identityFile', fromConfig.identityFile)
  pick('knownHosts', fromConfig.knownHosts)
  pick('hostKeyPolicy', fromConfig.hostKeyPolicy)
  const identityFile = merged.identityFile === null ? null : from(merged.identityFile)
  let bastion: ResolvedBastion | null = null
  if (merged.bastion) {
    bastion = {
      address: merged.bastion.address,
      port: merged.bastion.port ?? 22,
      user: merged.bastion.user ?? merged.user,
      identityFile: merged.bastion.identityFile === undefined ? identityFile : from(merged.bastion.identityFile),
    }
  } else if (config && fromConfig.proxyJump && !isExplicit('bastion')) {
    bastion = jumpChain(config, fromConfig.proxyJump, {user: merged.user, identityFile})
  }
  const hostName =
    fromConfig.hostName !== undefined && fromConfig.hostName !== address ? fromConfig.hostName : undefined
  return {
    ...merged,
    identityFile,
    knownHosts: from(merged.knownHosts),
    bastion,
    ...(hostName === undefined ? {} : {hostName}),
  }
}

/**
 * ProxyJump's hops as a chain of bastions, each looked up in the same config as ssh does (its HostName,
 * User, Port, IdentityFile, and for the first hop its own ProxyJump); what a hop leaves out comes from the
 * worker (its user and key), as for the inventory's bastion.
 */
function jumpChain(
  config: LoadedConfig,
  hops: readonly JumpHop[],
  worker: {readonly user: string; readonly identityFile: string | null},
  depth = 0,
): ResolvedBastion | null {
  if (depth > 8)
    throw new SshConfigProblem(config.file, 0, 'ProxyJump leads through more than 8 levels of jump hosts (a loop?)')
  let chain: ResolvedBastion | undefined
  for (const [i, hop] of hops.entries()) {
    const own = lookUpSshConfig(config, hop.host)
    if (i === 0 && own.proxyJump && own.proxyJump.length > 0)
      chain = jumpChain(config, own.proxyJump, worker, depth + 1) ?? undefined
    chain = {
      address: own.hostName ?? hop.host,
      port: hop.port ?? own.port ?? 22,
      user: hop.user ?? own.user ?? worker.user,
      identityFile: own.identityFile ?? worker.identityFile,
      ...(chain ? {via: chain} : {}),
    }
  }
  return chain ?? null
}

function resolveWorker(
  worker: WorkerDocument,
  spec: ClusterDocument['spec'],
  from: (path: string) => string,
  isExplicit: (key: keyof SshSettings) => boolean,
): WorkerSpec {
  const base = spec.ssh
  return {
    name: worker.name,
    address: worker.address,
    ...(worker.internalAddress !== undefined ? {internalAddress: worker.internalAddress} : {}),
    ...(worker.externalAddress !== undefined ? {externalAddress: worker.externalAddress} : {}),
    ssh: resolveSsh(base, worker.ssh, from, worker.address, isExplicit),
    labels: {...worker.labels},
    taints: [...worker.taints],
    hostKey: worker.hostKey,
    service: worker.service,
    adopt: worker.adopt,
    agent: resolveAgent(spec.agent, worker.agent, from),
    ...(worker.group === undefined ? {} : {group: worker.group}),
  }
}

/**
 * `file` is the inventory's path (relative paths in it are taken from its directory); '' for an
 * inventory built in memory, whose relative paths are taken from the working directory.
 */
export function resolveInventory(document: ClusterDocument, file: string, explicit?: ExplicitSsh): Inventory {
  const absolute = file === '' ? '' : resolvePath(file)
  const baseDir = absolute === '' ? process.cwd() : dirname(absolute)
  const from = (path: string) => resolveFrom(baseDir, path)
  const {spec} = document
  const name = document.metadata.name
  // The cross-checks guarantee exactly one of file and env.
  const token: TokenSource =
    spec.token.file !== undefined ? {kind: 'file', file: from(spec.token.file)} : {kind: 'env', env: spec.token.env!}
  return {
    file: absolute,
    name,
    k3s: {
      version: spec.k3s.version,
      ...(spec.k3s.binary === undefined ? {} : {binary: from(spec.k3s.binary)}),
      ...(spec.k3s.sha256 === undefined ? {} : {sha256: spec.k3s.sha256}),
      mirror: spec.k3s.mirror,
      image: spec.k3s.image,
      distribute: spec.k3s.distribute,
    },
    token,
    controlPlane: {
      dataDir: from(spec.controlPlane.dataDir ?? defaultDataDir(name)),
      agent: spec.controlPlane.agent,
      workarounds: spec.controlPlane.workarounds,
      advertiseAddress: spec.controlPlane.advertiseAddress,
      apiPort: spec.controlPlane.apiPort,
      extraArgs: [...spec.controlPlane.extraArgs],
      ...(spec.controlPlane.snapshots
        ? {
            snapshots: {
              to: [...spec.controlPlane.snapshots.to],
              everySeconds: seconds(spec.controlPlane.snapshots.every),
              keep: spec.controlPlane.snapshots.keep,
            },
          }
        : {}),
    },
    network: {...spec.network},
    concurrency: spec.concurrency,
    ...(spec.registries ? {registries: resolveRegistries(spec.registries, from)} : {}),
    images: resolveImages(spec.images, from),
    upgrade: spec.upgrade,
    workers: resolveWorkers(document, file, from, explicit),
  }
}

/** Every worker resolved; the OpenSSH config's problems, all at once, as inventory problems (exit 2). */
function resolveWorkers(
  document: ClusterDocument,
  file: string,
  from: (path: string) => string,
  explicit: ExplicitSsh | undefined,
): WorkerSpec[] {
  const problems: Problem[] = []
  const workers = document.spec.workers.map((worker, i) => {
    const isExplicit = (key: string) => !explicit || explicit.spec.has(key) || (explicit.workers[i]?.has(key) ?? false)
    try {
      return resolveWorker(worker, document.spec, from, isExplicit)
    } catch (error) {
      if (!(error instanceof SshConfigProblem)) throw error
      problems.push({
        file: error.file,
        line: error.line,
        column: error.line === 0 ? 0 : 1,
        path: `spec.workers[${i}].ssh.config`,
        message: `${error.message} (for worker ${worker.name}, address ${worker.address})`,
      })
      return undefined
    }
  })
  if (problems.length > 0) throw new InventoryError(file, problems)
  return workers as WorkerSpec[]
}

/** `30s`, `10m`, `1h` (the schema's pattern) in seconds. */
function seconds(every: string): number {
  const unit = {s: 1, m: 60, h: 3600}[every.slice(-1) as 's' | 'm' | 'h']
  return Number(every.slice(0, -1)) * unit
}
