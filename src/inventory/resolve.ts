import {dirname, resolve as resolvePath} from 'node:path'

import {resolveFrom} from '../state/paths.js'
import type {Inventory, ResolvedBastion, ResolvedSsh, TokenSource, WorkerSpec} from './model.js'
import type {ClusterDocument, SshSettings, WorkerDocument} from './schema.js'

/**
 * From the checked document (defaults already filled in by the schema check) to the Inventory the
 * rest of hybrid reads: `~` and relative paths made absolute against the inventory file's directory,
 * each worker's ssh merged over `spec.ssh`, the bastion completed, dataDir defaulted per cluster.
 */

/** Where a cluster's k3s data lives unless the inventory says otherwise. */
export function defaultDataDir(name: string): string {
  return `/var/lib/hybrid/${name}`
}

function resolveSsh(base: SshSettings, overrides: WorkerDocument['ssh'], from: (path: string) => string): ResolvedSsh {
  const merged: SshSettings = {...base, ...(overrides ?? {})}
  const identityFile = merged.identityFile === null ? null : from(merged.identityFile)
  let bastion: ResolvedBastion | null = null
  if (merged.bastion) {
    bastion = {
      address: merged.bastion.address,
      port: merged.bastion.port ?? 22,
      user: merged.bastion.user ?? merged.user,
      identityFile: merged.bastion.identityFile === undefined ? identityFile : from(merged.bastion.identityFile),
    }
  }
  return {...merged, identityFile, knownHosts: from(merged.knownHosts), bastion}
}

function resolveWorker(worker: WorkerDocument, base: SshSettings, from: (path: string) => string): WorkerSpec {
  return {
    name: worker.name,
    address: worker.address,
    ...(worker.internalAddress !== undefined ? {internalAddress: worker.internalAddress} : {}),
    ...(worker.externalAddress !== undefined ? {externalAddress: worker.externalAddress} : {}),
    ssh: resolveSsh(base, worker.ssh, from),
    labels: {...worker.labels},
    taints: [...worker.taints],
    hostKey: worker.hostKey,
    service: worker.service,
    adopt: worker.adopt,
  }
}

/**
 * `file` is the inventory's path (relative paths in it are taken from its directory); '' for an
 * inventory built in memory, whose relative paths are taken from the working directory.
 */
export function resolveInventory(document: ClusterDocument, file: string): Inventory {
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
    },
    token,
    controlPlane: {
      dataDir: from(spec.controlPlane.dataDir ?? defaultDataDir(name)),
      agent: spec.controlPlane.agent,
      workarounds: spec.controlPlane.workarounds,
      advertiseAddress: spec.controlPlane.advertiseAddress,
      apiPort: spec.controlPlane.apiPort,
      extraArgs: [...spec.controlPlane.extraArgs],
    },
    network: {...spec.network},
    concurrency: spec.concurrency,
    upgrade: spec.upgrade,
    workers: spec.workers.map((worker) => resolveWorker(worker, spec.ssh, from)),
  }
}
