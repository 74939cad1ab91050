import {createHash} from 'node:crypto'
import {lstat, readdir, readFile, readlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {ResolvedSsh, WorkerSpec} from '../../src/inventory/model.js'
import type {CheckedInventory} from '../../src/remote/worker-check.js'
import type {Lab, LabHost} from '../helpers/lab.js'
import {DEFAULT_REMOTE_LIMITS} from '../../src/remote/limits.js'

/** Inventory workers for lab hosts, as the loader would resolve them (lab key, lab known_hosts, strict). */
export function labWorker(
  lab: Lab,
  host: LabHost,
  ssh: Partial<ResolvedSsh> = {},
  hostKey: string | null = null,
): WorkerSpec {
  return {
    name: host.name,
    address: host.address,
    ssh: {
      user: 'root',
      port: host.port,
      identityFile: lab.identityFile,
      knownHosts: lab.knownHosts,
      hostKeyPolicy: 'strict',
      sudo: 'auto',
      bastion: null,
      proxy: null,
      connectTimeoutSeconds: 5,
      ...DEFAULT_REMOTE_LIMITS,
      ...ssh,
    },
    labels: {},
    taints: [],
    hostKey,
    service: 'auto',
  }
}

/** The part of an inventory the worker checks read. */
export function labInventory(
  workers: WorkerSpec[],
  network: Partial<CheckedInventory['network']> = {},
): CheckedInventory {
  return {
    name: 'lab',
    workers,
    concurrency: 10,
    network: {mode: 'tunnel', cni: 'auto', manageSshd: true, ...network},
    controlPlane: {
      dataDir: '/var/lib/hybrid/lab',
      agent: true,
      workarounds: 'auto',
      advertiseAddress: '100.64.255.1',
      apiPort: 6443,
      extraArgs: [],
    },
  }
}

/** The directories hybrid could change on a worker (its own copies, seen from this machine). */
const WATCHED = [
  '/etc/rancher',
  '/var/lib/rancher',
  '/usr/local/bin',
  '/etc/ssh',
  '/etc/systemd/system',
  '/etc/sudoers.d',
  '/root',
  '/home',
  '/tmp',
]

/**
 * One digest over every path, mode, owner, symlink target and file content under a host's watched
 * directories: equal before and after means nothing there was changed.
 */
export async function hostDigest(host: LabHost): Promise<string> {
  const hash = createHash('sha256')
  const walk = async (dir: string): Promise<void> => {
    let entries: string[]
    try {
      entries = (await readdir(dir)).sort()
    } catch {
      hash.update(`${dir}: missing\n`)
      return
    }
    for (const entry of entries) {
      const path = join(dir, entry)
      const s = await lstat(path)
      hash.update(`${path} ${s.mode} ${s.uid}:${s.gid}\n`)
      if (s.isDirectory()) await walk(path)
      else if (s.isSymbolicLink()) hash.update(await readlink(path))
      else if (s.isFile()) hash.update(await readFile(path))
    }
  }
  for (const dir of WATCHED) await walk(host.pathOnMachine(dir))
  return hash.digest('hex')
}

export async function fileDigest(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path).catch(() => Buffer.from('(missing)')))
    .digest('hex')
}

/** One worker of a lab inventory: the host, its `ssh` overrides, and what else the worker entry says. */
export interface InventoryWorker {
  readonly host: LabHost
  /** The worker's name and address when not the host's (e.g. its forwarded address). */
  readonly name?: string
  readonly address?: string
  /** workers[].internalAddress and externalAddress. */
  readonly internalAddress?: string
  readonly externalAddress?: string
  readonly ssh?: Record<string, unknown>
  readonly labels?: Record<string, string>
  readonly taints?: string[]
}

export interface LabInventoryOptions {
  readonly knownHosts?: string
  readonly ssh?: Record<string, unknown>
  readonly network?: Record<string, unknown>
  /** metadata.name (default "scene"). */
  readonly name?: string
  /** spec.k3s (e.g. the stand-in as a local binary). */
  readonly k3s?: Record<string, unknown>
  /** Merged over {dataDir: DIR/data}. */
  readonly controlPlane?: Record<string, unknown>
  /** spec.concurrency (default: the inventory's default). */
  readonly concurrency?: number
}

/**
 * An inventory file for lab hosts (YAML is a superset of JSON, so it is written as JSON): the lab key,
 * `knownHosts` as given, tunnel mode; the options are merged over that.
 */
export async function writeLabInventory(
  dir: string,
  lab: Lab,
  workers: readonly InventoryWorker[],
  options: LabInventoryOptions = {},
): Promise<string> {
  const file = join(dir, 'inventory.yaml')
  const document = {
    apiVersion: 'hybrid.dev/v1alpha1',
    kind: 'Cluster',
    metadata: {name: options.name ?? 'scene'},
    spec: {
      ...(options.k3s ? {k3s: options.k3s} : {}),
      ...(options.concurrency ? {concurrency: options.concurrency} : {}),
      token: {file: join(dir, 'token')},
      controlPlane: {dataDir: join(dir, 'data'), ...options.controlPlane},
      network: {mode: 'tunnel', ...options.network},
      ssh: {
        identityFile: lab.identityFile,
        knownHosts: options.knownHosts ?? lab.knownHosts,
        connectTimeoutSeconds: 3,
        ...options.ssh,
      },
      workers: workers.map((w) => ({
        name: w.name ?? w.host.name,
        address: w.address ?? w.host.address,
        ...(w.internalAddress ? {internalAddress: w.internalAddress} : {}),
        ...(w.externalAddress ? {externalAddress: w.externalAddress} : {}),
        ...(w.ssh ? {ssh: w.ssh} : {}),
        ...(w.labels ? {labels: w.labels} : {}),
        ...(w.taints ? {taints: w.taints} : {}),
      })),
    },
  }
  await writeFile(file, JSON.stringify(document, null, 2))
  return file
}
