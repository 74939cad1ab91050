import {isIPv4} from 'node:net'

import {checkAgentSettings} from './agent-checks.js'
import {formatPath} from './errors.js'
import {sandboxNodeName} from './node-names.js'
import type {Finding, PathSegment} from './positions.js'

/**
 * Rules that span fields or need more than a schema: unique worker names and addresses, exactly one
 * token source, a host key for every worker whose (merged) policy is `pinned`, an advertise address
 * agents can use, labels the kubelet accepts, no repeated taint. They run after the schema check on
 * the same (defaulted) data, which may still hold wrong types: every rule reads defensively, so all
 * problems are reported in one run.
 */

type Dict = Record<string, unknown>

function dict(value: unknown): Dict | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Dict) : undefined
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** Labels the kubelet may set on its own Node in the kubernetes.io / k8s.io namespaces (k8s IsKubeletLabel). */
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname',
  'kubernetes.io/os',
  'kubernetes.io/arch',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/arch',
  'beta.kubernetes.io/instance-type',
  'node.kubernetes.io/instance-type',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
])
const KUBELET_NAMESPACES = ['kubelet.kubernetes.io', 'node.kubernetes.io']

function inNamespace(namespace: string, suffix: string): boolean {
  return namespace === suffix || namespace.endsWith(`.${suffix}`)
}

/** The kubelet refuses to start with other kubernetes.io/k8s.io labels in --node-labels (k3s passes them there). */
function kubeletRefuses(key: string): boolean {
  const slash = key.lastIndexOf('/')
  if (slash < 0 || KUBELET_LABELS.has(key)) return false
  const namespace = key.slice(0, slash)
  if (!inNamespace(namespace, 'kubernetes.io') && !inNamespace(namespace, 'k8s.io')) return false
  return !KUBELET_NAMESPACES.some((allowed) => inNamespace(namespace, allowed))
}

/** Why an advertised address cannot be used, if it cannot: k8s refuses loopback and link-local endpoints. */
function unusableAddress(address: string): string | undefined {
  if (!isIPv4(address)) return undefined
  const [a, b] = address.split('.').map(Number)
  if (a === 127) return 'a loopback address'
  if (a === 169 && b === 254) return 'a link-local address'
  if (address === '0.0.0.0') return 'the unspecified address'
  return undefined
}

/** Why the kubelet refuses an address for a Node, if it does (k8s validateNodeIP: loopback, link-local, unspecified, multicast). */
function unusableNodeAddress(address: string): string | undefined {
  const v4 = unusableAddress(address)
  if (v4) return v4
  if (isIPv4(address))
    return Number(address.split('.')[0]) >= 224 && Number(address.split('.')[0]) < 240
      ? 'a multicast address'
      : undefined
  const lower = address.toLowerCase()
  if (lower === '::1') return 'a loopback address'
  if (lower === '::') return 'the unspecified address'
  if (/^fe[89ab]/.test(lower)) return 'a link-local address'
  if (lower.startsWith('ff')) return 'a multicast address'
  return undefined
}

function checkToken(spec: Dict): Finding[] {
  const token = dict(spec.token)
  if (!token) return [] // a wrong type is the schema's finding
  const path = ['spec', 'token']
  const hasFile = token.file !== undefined
  const hasEnv = token.env !== undefined
  if (hasFile && hasEnv) return [{path, target: 'key', message: 'give exactly one of file and env, not both'}]
  if (!hasFile && !hasEnv) {
    return [
      {
        path,
        target: 'key',
        message:
          'needs exactly one of file (a token file, created 0600 with a random token if missing) or env (an environment variable that holds the token)',
      },
    ]
  }
  return []
}

function checkControlPlane(spec: Dict): Finding[] {
  const address = text(dict(spec.controlPlane)?.advertiseAddress)
  const why = address === undefined ? undefined : unusableAddress(address)
  if (!why) return []
  const mode = dict(spec.network)?.mode
  const remedy =
    mode === 'direct'
      ? 'use an address of the sandbox that the workers can reach'
      : 'keep the default 100.64.255.1, which hybrid puts on every worker'
  return [
    {
      path: ['spec', 'controlPlane', 'advertiseAddress'],
      target: 'value',
      message: `${JSON.stringify(address)} is ${why}; agents and pods reach the API at this address, and Kubernetes refuses loopback and link-local ones (${remedy})`,
    },
  ]
}

/** Every snapshot target is one of the inventory's workers. */
function checkSnapshotTargets(spec: Dict): Finding[] {
  const to = dict(dict(spec.controlPlane)?.snapshots)?.to
  if (!Array.isArray(to)) return []
  const workers = new Set(
    (Array.isArray(spec.workers) ? spec.workers : []).map((w) => text(dict(w)?.name)).filter(Boolean),
  )
  return to.flatMap((name, index) =>
    typeof name === 'string' && !workers.has(name)
      ? [
          {
            path: ['spec', 'controlPlane', 'snapshots', 'to', index],
            target: 'value' as const,
            message: `${JSON.stringify(name)} is not one of spec.workers; snapshots are kept on workers of this cluster`,
          },
        ]
      : [],
  )
}

function checkWorker(
  worker: Dict,
  index: number,
  spec: Dict,
  seen: {names: Map<string, number>; addresses: Map<string, number>; document: Dict},
): Finding[] {
  const findings: Finding[] = []
  const at = (...rest: PathSegment[]): PathSegment[] => ['spec', 'workers', index, ...rest]
  const other = (i: number) => formatPath(['spec', 'workers', i])

  const name = text(worker.name)
  const cluster = text(dict(seen.document.metadata)?.name)
  if (name !== undefined && cluster !== undefined && name === sandboxNodeName(cluster))
    findings.push({
      path: at('name'),
      target: 'value',
      message: `"${name}" is the name of the sandbox's own Node (metadata.name + "-server"), which hybrid would then take for this worker's; choose another name`,
    })
  if (name !== undefined) {
    const first = seen.names.get(name)
    if (first === undefined) seen.names.set(name, index)
    else
      findings.push({
        path: at('name'),
        target: 'value',
        message: `"${name}" is already the name of ${other(first)}; worker names must be unique`,
      })
  }

  const address = text(worker.address)
  if (address !== undefined) {
    const key = address.toLowerCase()
    const first = seen.addresses.get(key)
    if (first === undefined) seen.addresses.set(key, index)
    else
      findings.push({
        path: at('address'),
        target: 'value',
        message: `"${address}" is already the address of ${other(first)}; worker addresses must be unique`,
      })
  }

  for (const field of ['internalAddress', 'externalAddress'] as const) {
    const value = text(worker[field])
    const why = value === undefined ? undefined : unusableNodeAddress(value)
    if (why)
      findings.push({
        path: at(field),
        target: 'value',
        message: `${JSON.stringify(value)} is ${why}, which the kubelet refuses as a Node address`,
      })
  }

  const own = dict(worker.ssh)?.hostKeyPolicy
  const policy = own ?? dict(spec.ssh)?.hostKeyPolicy
  if (policy === 'pinned' && (worker.hostKey === null || worker.hostKey === undefined)) {
    const where = own === undefined ? 'spec.ssh.hostKeyPolicy' : `${formatPath(at('ssh', 'hostKeyPolicy'))}`
    findings.push({
      path: at('hostKey'),
      target: 'value',
      message: `is required because hostKeyPolicy is pinned (${where}): give the worker's public host key, "ssh-ed25519 AAAA…"`,
    })
  }

  for (const key of Object.keys(dict(worker.labels) ?? {})) {
    if (!kubeletRefuses(key)) continue
    findings.push({
      path: at('labels', key),
      target: 'key',
      message: `the kubelet refuses to set ${JSON.stringify(key)} on its own Node: in the kubernetes.io and k8s.io namespaces it may set only node.kubernetes.io/…, kubelet.kubernetes.io/… and a few well-known keys such as topology.kubernetes.io/zone`,
    })
  }

  if (Array.isArray(worker.taints)) {
    const taints = new Map<string, number>()
    worker.taints.forEach((taint, i) => {
      if (typeof taint !== 'string') return
      // Kubernetes allows one taint per key and effect.
      const keyEffect = `${taint.split(/[=:]/)[0]}:${taint.slice(taint.lastIndexOf(':') + 1)}`
      const first = taints.get(keyEffect)
      if (first === undefined) taints.set(keyEffect, i)
      else
        findings.push({
          path: at('taints', i),
          target: 'value',
          message: `repeats the key and effect of item ${first} (${keyEffect}); a Node has one taint per key and effect`,
        })
    })
  }
  return findings
}

/** Every cross-field problem of a parsed (and defaulted) inventory. */
export function crossCheck(data: unknown): Finding[] {
  const spec = dict(dict(data)?.spec)
  if (!spec) return []
  const findings = [
    ...checkToken(spec),
    ...checkControlPlane(spec),
    ...checkAgentSettings(spec),
    ...checkSnapshotTargets(spec),
  ]
  const seen = {names: new Map<string, number>(), addresses: new Map<string, number>(), document: dict(data) ?? {}}
  if (Array.isArray(spec.workers)) {
    spec.workers.forEach((worker, index) => {
      const entry = dict(worker)
      if (entry) findings.push(...checkWorker(entry, index, spec, seen))
    })
  }
  return findings
}
