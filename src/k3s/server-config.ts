import {join} from 'node:path'

import {stringify} from 'yaml'

import {UsageError} from '../errors.js'
import type {Inventory} from '../inventory/model.js'
import {cniServerConfig} from '../kube/flannel.js'
import {SANDBOX_LABEL} from '../sandbox/workarounds/taint.js'
import type {ServerConfigFragment, ServerConfigValue} from '../sandbox/workarounds/workaround.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {sandboxNodeName} from '../inventory/node-names.js'

/**
 * The k3s server's `config.yaml` (keys = k3s flag names, docs/architecture.md, "Workarounds"): hybrid's own settings from the
 * inventory, then the chosen workarounds' fragments, then `controlPlane.extraArgs`. Lists append at
 * every step (`tls-san`, `kubelet-arg`, `node-label`, …); a scalar given later replaces an earlier one.
 */
export type ServerConfigMap = Record<string, ServerConfigValue>

export interface ServerConfigInput {
  readonly inventory: Inventory
  /** The file k3s reads the cluster token from (never the token itself: it stays out of argv). */
  readonly tokenFile: string
  /**
   * The file k3s reads the agent token from: the secret workers join with. It gives the k3s:agent role
   * only, so a worker cannot fetch the cluster's CA keys (`/v1-k3s/server-bootstrap`) with it.
   */
  readonly agentTokenFile: string
  /** The fragments of the workarounds `up` applies, in the order they are applied. */
  readonly fragments: readonly ServerConfigFragment[]
  /**
   * This machine's own addresses, where clients elsewhere (the host of a sandbox) reach the API: they go
   * into the serving certificate, as k3s does for its node IP (which hybrid sets to the advertise address).
   */
  readonly addresses?: readonly string[]
}

export interface ServerConfig {
  /** What goes into config.yaml. */
  readonly config: ServerConfigMap
  /**
   * extraArgs that cannot become config keys (single-dash flags and their values, stray words): passed to
   * `k3s server` on the command line after `--config`, in their original order.
   */
  readonly commandLine: readonly string[]
}

/** `<dataDir>/config.yaml`: the file `k3s server --config` reads. */
export function serverConfigPath(dataDir: string): string {
  return join(dataDir, 'config.yaml')
}

/** hybrid's agent token secret (0600), beside k3s's data, so it outlives `down` as the cluster's CA does. */
export function agentTokenSecretPath(dataDir: string): string {
  return join(dataDir, 'hybrid-agent-token')
}

/** The agent token k3s writes from it: K10<CA hash>::node:<secret>, what workers get. */
export function k3sAgentTokenPath(dataDir: string): string {
  return join(dataDir, 'server', 'agent-token')
}

/** The server token k3s writes: K10<CA hash>::server:<secret>; it never leaves this machine. */
export function k3sServerTokenPath(dataDir: string): string {
  return join(dataDir, 'server', 'token')
}

/** The kubeconfig k3s writes (write-kubeconfig, mode 0600): the supervisor checks readiness through it. */
export function k3sKubeconfigPath(dataDir: string): string {
  return join(dataDir, 'kubeconfig.yaml')
}

/** The sandbox's own Node (the server's embedded agent). */
export {sandboxNodeName}

/**
 * Keys hybrid sets from the inventory or needs for itself: extraArgs may not change them (the user is
 * told which inventory field to change instead), or hybrid would wait on the wrong port, lose the
 * kubeconfig, or put the token on a command line.
 */
const RESERVED: Readonly<Record<string, string>> = {
  config: 'hybrid passes its own config file',
  'data-dir': 'set it with spec.controlPlane.dataDir',
  'https-listen-port': 'set it with spec.controlPlane.apiPort',
  'advertise-address': 'set it with spec.controlPlane.advertiseAddress',
  token: 'set spec.token (a token on a command line is visible to every user of the machine)',
  'token-file': 'set it with spec.token.file',
  'agent-token': 'hybrid gives the workers an agent token of their own',
  'agent-token-file': 'hybrid gives the workers an agent token of their own',
  'node-name': 'hybrid names the sandbox Node after the cluster',
  'write-kubeconfig': 'use `hybrid kubeconfig` for a kubeconfig',
  'write-kubeconfig-mode': 'hybrid keeps the kubeconfig 0600',
  'disable-agent': 'set spec.controlPlane.agent: false',
}

/**
 * A name the API's serving certificate always carries (hybrid puts it in `tls-san`; k3s adds it too): a
 * kubeconfig whose server is a forwarded port (`kubeconfig --via`) verifies the certificate against it.
 */
export const API_CERT_NAME = 'localhost'

/** The whole config for this inventory and these workarounds. Throws UsageError for a reserved extraArg. */
export function buildServerConfig(input: ServerConfigInput): ServerConfig {
  const {inventory} = input
  const cp = inventory.controlPlane
  const config: ServerConfigMap = {}
  merge(config, {
    'data-dir': cp.dataDir,
    'token-file': input.tokenFile,
    'agent-token-file': input.agentTokenFile,
    'advertise-address': cp.advertiseAddress,
    'tls-san': unique([cp.advertiseAddress, '127.0.0.1', API_CERT_NAME, ...(input.addresses ?? [])]),
    'https-listen-port': cp.apiPort,
    'write-kubeconfig': k3sKubeconfigPath(cp.dataDir),
    'write-kubeconfig-mode': '0600',
  })
  // The sandbox's Node is labelled whatever the workarounds: the workers' CNI keeps off it by that label.
  if (cp.agent) merge(config, {'node-name': sandboxNodeName(inventory.name), 'node-label': [SANDBOX_LABEL]})
  else merge(config, {'disable-agent': true})
  for (const fragment of input.fragments) merge(config, fragment)
  merge(config, cniServerConfig(inventory.network.cni))
  const extra = parseExtraArgs(cp.extraArgs, inventory.file)
  mergeExtra(config, extra.flags)
  return {config, commandLine: extra.commandLine}
}

/** config.yaml's text: a header saying who wrote it, then the keys in the order they were set. */
export function serverConfigYaml(config: ServerConfigMap): string {
  return `# written by hybrid; changes are replaced on the next \`hybrid up\`\n${stringify(config, {lineWidth: 0})}`
}

/** Write config.yaml atomically, 0600 (it names the token file and may carry secrets from extraArgs). */
export async function writeServerConfig(path: string, config: ServerConfigMap): Promise<void> {
  await writeFileAtomic(path, serverConfigYaml(config), 0o600)
}

function unique(values: string[]): string[] {
  return [...new Set(values)]
}

/** Lists append (a scalar meeting a list joins it); a scalar replaces a scalar. */
function merge(config: ServerConfigMap, fragment: ServerConfigFragment): void {
  for (const [key, value] of Object.entries(fragment)) {
    const existing = config[key]
    if (Array.isArray(existing) || Array.isArray(value)) {
      config[key] = unique([...toList(existing), ...toList(value)])
    } else config[key] = value
  }
}

function toList(value: ServerConfigValue | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [String(value)]
}

interface ParsedExtraArgs {
  /** Flags in order; a flag given twice stays twice (it is then a list). */
  readonly flags: ReadonlyArray<readonly [string, string | true]>
  readonly commandLine: string[]
}

/**
 * `--flag=value`, `--flag value` and a bare `--flag` (true) become config keys: k3s takes no positional
 * arguments after `server`, so a word after a flag is its value. Single-dash flags (`-v 2`) and stray
 * words stay on the command line, where k3s itself interprets them.
 */
export function parseExtraArgs(args: readonly string[], inventoryFile = ''): ParsedExtraArgs {
  const flags: Array<readonly [string, string | true]> = []
  const commandLine: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith('--') || arg === '--') {
      commandLine.push(arg)
      if (/^-[^-]/.test(arg) && !arg.includes('=') && i + 1 < args.length && !args[i + 1].startsWith('-'))
        commandLine.push(args[++i])
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    let value: string | true
    if (eq !== -1) value = arg.slice(eq + 1)
    else if (i + 1 < args.length && !args[i + 1].startsWith('-')) value = args[++i]
    else value = true
    const reason = RESERVED[name]
    if (reason) {
      const where = inventoryFile ? `${inventoryFile} ` : ''
      throw new UsageError(`${where}spec.controlPlane.extraArgs: --${name} is managed by hybrid; ${reason}`)
    }
    flags.push([name, value])
  }
  return {flags, commandLine}
}

/** extraArgs come last: a flag repeated in them, or meeting a list, appends; otherwise it replaces. */
function mergeExtra(config: ServerConfigMap, flags: ParsedExtraArgs['flags']): void {
  const counts = new Map<string, number>()
  for (const [name] of flags) counts.set(name, (counts.get(name) ?? 0) + 1)
  const replaced = new Set<string>()
  for (const [name, raw] of flags) {
    const value: ServerConfigValue = raw === true ? true : raw === 'true' ? true : raw === 'false' ? false : raw
    const existing = config[name]
    if (Array.isArray(existing)) {
      config[name] = unique([...existing, String(value)])
    } else if ((counts.get(name) ?? 0) > 1) {
      // Repeated by the user: a repeatable flag, whatever hybrid had set before is replaced by the list.
      config[name] = replaced.has(name) ? unique([...toList(config[name]), String(value)]) : [String(value)]
    } else config[name] = value
    replaced.add(name)
  }
}
