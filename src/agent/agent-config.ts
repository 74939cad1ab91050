import {isIP} from 'node:net'

import {stringify} from 'yaml'

import type {AgentConfigValue, WorkerSpec} from '../inventory/model.js'
import {UsageError} from '../errors.js'
import {registerSecret} from '../log/redact.js'
import {WORKER_LABEL} from '../inventory/node-names.js'
import type {HostFacts} from '../remote/facts.js'
import {nodeAddresses} from './node-addresses.js'
import {WORKER_PATHS} from './worker-paths.js'

/** What one worker's `k3s agent` is told (the token itself travels separately, into its own file). */
export interface AgentSpec {
  /** The API as the worker reaches it: https://advertiseAddress:apiPort (through the tunnel or directly). */
  readonly server: string
  readonly nodeName: string
  /** k3s's node-ip; absent: k3s picks the address of the default route. */
  readonly nodeIp?: string
  /** k3s's node-external-ip (the Node's ExternalIP). */
  readonly nodeExternalIp?: string
  readonly labels: Readonly<Record<string, string>>
  /** "key=value:Effect", as k3s's --node-taint takes them. */
  readonly taints: readonly string[]
  /** Default /var/lib/rancher/k3s. */
  readonly dataDir?: string
  /** Extra environment for the service (HTTP_PROXY, NO_PROXY, …); never the token. */
  readonly environment?: Readonly<Record<string, string>>
  /**
   * The inventory's own k3s agent keys (spec.agent merged with workers[].agent): written after hybrid's,
   * lists of node-label and node-taint appended to hybrid's. Keys hybrid sets never get here (agent-checks.ts).
   */
  readonly extra?: Readonly<Record<string, AgentConfigValue>>
}

/** The API's URL as a worker dials it: https://advertiseAddress:apiPort (an IPv6 address in brackets). */
export function apiServerUrl(address: string, port: number): string {
  return `https://${isIP(address) === 6 ? `[${address}]` : address}:${port}`
}

/**
 * The spec of an inventory worker of `cluster` joining `server`: its name, labels and taints, hybrid's
 * label that tells its Node from another of the same name (`WORKER_LABEL`), and the Node's addresses as
 * its facts allow them (`nodeAddresses`: node-ip only where the worker has it).
 */
export function agentSpecFor(
  worker: WorkerSpec,
  server: string,
  facts: Pick<HostFacts, 'interfaceAddresses'>,
  cluster: string,
): AgentSpec {
  const {nodeIp, nodeExternalIp} = nodeAddresses(worker, facts)
  const agent = worker.agent
  return {
    server,
    nodeName: worker.name,
    ...(nodeIp ? {nodeIp} : {}),
    ...(nodeExternalIp ? {nodeExternalIp} : {}),
    labels: {...worker.labels, [WORKER_LABEL]: cluster},
    taints: worker.taints,
    ...(agent && Object.keys(agent.environment).length > 0 ? {environment: agent.environment} : {}),
    ...(agent && Object.keys(agent.config).length > 0 ? {extra: agent.config} : {}),
  }
}

/** A list-valued key of the inventory's extra config: hybrid's entries first, then the inventory's. */
function listOf(own: readonly string[], extra: AgentConfigValue | undefined): string[] {
  if (extra === undefined) return [...own]
  const more: readonly string[] = typeof extra === 'object' ? extra : [String(extra)]
  return [...own, ...more]
}

/**
 * /etc/rancher/k3s/config.yaml for `k3s agent` (keys are k3s's flag names). The token is referred to by
 * its file, so it is in neither the config, argv nor an environment. Lists are left out when empty.
 */
export function agentConfig(spec: AgentSpec): string {
  const {'node-label': extraLabels, 'node-taint': extraTaints, ...extra} = spec.extra ?? {}
  const labels = listOf(
    Object.entries(spec.labels).map(([key, value]) => `${key}=${value}`),
    extraLabels,
  )
  const taints = listOf(spec.taints, extraTaints)
  const config: Record<string, AgentConfigValue> = {
    server: spec.server,
    'token-file': WORKER_PATHS.token,
    'data-dir': spec.dataDir ?? WORKER_PATHS.dataDir,
    'node-name': spec.nodeName,
    ...(spec.nodeIp ? {'node-ip': spec.nodeIp} : {}),
    ...(spec.nodeExternalIp ? {'node-external-ip': spec.nodeExternalIp} : {}),
    ...(labels.length > 0 ? {'node-label': labels} : {}),
    ...(taints.length > 0 ? {'node-taint': taints} : {}),
    ...extra,
  }
  return `# Written by hybrid for k3s agent; changes are replaced on the next hybrid up.\n${stringify(config)}`
}

/**
 * KEY='value' lines for an env file. systemd's EnvironmentFile and a sourced sh file read single quotes
 * alike, but agree on no escape inside them, so a value with a quote or a line break is refused.
 */
export function agentEnvFile(environment: Readonly<Record<string, string>> = {}): string {
  const lines = Object.entries(environment).map(([key, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`${key} is not an environment variable name`)
    if (/['\n\r]/.test(value)) throw new UsageError(`the value of ${key} contains a quote or a line break`)
    // A proxy URL may carry credentials: the values are kept out of every log.
    registerSecret(value)
    return `${key}='${value}'`
  })
  return ['# Environment of the k3s agent, written by hybrid.', ...lines, ''].join('\n')
}
