import type {SshSettings, WorkaroundsSetting} from './schema.js'

/**
 * The inventory as the rest of hybrid sees it: defaults applied, `~` and relative paths resolved
 * (relative to the inventory file), each worker's ssh settings merged over `spec.ssh`. Only the loader
 * builds it; phases and adapters read it and never look at the YAML.
 */
export interface Inventory {
  /** Absolute path of the inventory file ('' when built in memory). */
  readonly file: string
  /** metadata.name: the cluster's name and kubeconfig context. */
  readonly name: string
  readonly k3s: K3sSettings
  readonly token: TokenSource
  readonly controlPlane: ControlPlaneSettings
  readonly network: NetworkSettings
  readonly concurrency: number
  /** spec.registries: written as k3s's registries.yaml on every worker; absent: hybrid writes none. */
  readonly registries?: RegistriesSettings
  readonly images: ImagesSettings
  readonly upgrade: UpgradeSettings
  readonly workers: readonly WorkerSpec[]
}

/** A k3s agent config value: a string, a boolean, a number, or a list (repeatable flags). */
export type AgentConfigValue = string | boolean | number | readonly string[]

/** A worker's agent settings: spec.agent with the worker's own agent merged over it (resolve.ts). */
export interface AgentSettings {
  /** k3s agent config keys beyond those hybrid writes (k3s-agent-flags.ts), as config.yaml takes them. */
  readonly config: Readonly<Record<string, AgentConfigValue>>
  /** The agent service's environment (its env file), never argv. */
  readonly environment: Readonly<Record<string, string>>
  readonly files: readonly AgentFileSpec[]
}

export interface AgentFileSpec {
  /** Absolute local path. */
  readonly source: string
  /** Absolute path on the worker. */
  readonly destination: string
  /** Permission bits, e.g. 0o644. */
  readonly mode: number
}

/** Where a registry password comes from: a local file (absolute) or an environment variable. */
export type PasswordSource =
  {readonly kind: 'file'; readonly file: string} | {readonly kind: 'env'; readonly env: string}

export interface RegistriesSettings {
  readonly mirrors: Readonly<
    Record<string, {readonly endpoint: readonly string[]; readonly rewrite?: Readonly<Record<string, string>>}>
  >
  readonly configs: Readonly<Record<string, RegistryConfigSettings>>
}

export interface RegistryConfigSettings {
  readonly auth?: {readonly username: string; readonly password: PasswordSource}
  readonly tls?: {
    readonly caFile?: string
    readonly certFile?: string
    readonly keyFile?: string
    readonly insecureSkipVerify?: boolean
  }
}

export interface ImagesSettings {
  /** Absolute local paths of image archives, uploaded to every worker's agent/images directory. */
  readonly archives: readonly string[]
  /** Registry (host, and path) of the flannel images hybrid deploys; ghcr.io by default. */
  readonly flannelRegistry: string
}

/** How a changed spec.k3s.version rolls over the workers (docs/architecture.md, "Upgrades"). */
export interface UpgradeSettings {
  readonly maxUnavailable: number
  readonly drainTimeoutSeconds: number
}

export interface K3sSettings {
  readonly version: string
  /** Absolute path of a local binary, when given. */
  readonly binary?: string
  readonly sha256?: string
  readonly mirror: string | null
  readonly image: string
  /** How the binary reaches the workers (docs/architecture.md, "Distributing the k3s binary"). */
  readonly distribute: K3sDistribute
}

export type K3sDistribute = 'coordinator' | 'peers' | 'worker-download'

/** Exactly one of the two (the loader enforces it). `file` is absolute. */
export type TokenSource = {readonly kind: 'file'; readonly file: string} | {readonly kind: 'env'; readonly env: string}

export interface ControlPlaneSettings {
  /** Absolute k3s --data-dir (default /var/lib/hybrid/<name>). */
  readonly dataDir: string
  readonly agent: boolean
  readonly workarounds: WorkaroundsSetting
  readonly advertiseAddress: string
  readonly apiPort: number
  readonly extraArgs: readonly string[]
  /** Where and how often snapshots are taken; absent: none are. */
  readonly snapshots?: SnapshotSettings
}

export interface SnapshotSettings {
  /** Worker names (each one of `workers`; the loader checks it). */
  readonly to: readonly string[]
  readonly everySeconds: number
  readonly keep: number
}

export interface NetworkSettings {
  readonly mode: 'tunnel' | 'direct'
  readonly cni: 'auto' | 'flannel' | 'none'
  readonly manageSshd: boolean
}

/**
 * SSH settings of one worker: `spec.ssh` merged with the worker's own `ssh`, paths absolute
 * (identityFile null: ssh-agent).
 */
export interface ResolvedSsh extends Omit<SshSettings, 'bastion' | 'config'> {
  readonly bastion: ResolvedBastion | null
  /** The address to dial when an OpenSSH config's HostName maps the worker's address to another. */
  readonly hostName?: string
  /** The variable holding the identity file's passphrase (read once, never passed on: util/secret-env.ts). */
  readonly passphraseEnv?: string
}

/** The jump host, with what the inventory left out filled in from the worker's own settings. */
export interface ResolvedBastion {
  readonly address: string
  /** 22 unless given. */
  readonly port: number
  /** The worker's ssh user unless given. */
  readonly user: string
  /** Absolute; the worker's identityFile unless given (null: ssh-agent). */
  readonly identityFile: string | null
  /** The jump host this one is reached through (an OpenSSH ProxyJump chain of more than one hop). */
  readonly via?: ResolvedBastion
}

export interface WorkerSpec {
  readonly name: string
  readonly address: string
  /** The Node's InternalIP (k3s node-ip), when the inventory chooses it (src/agent/node-addresses.ts). */
  readonly internalAddress?: string
  /** The Node's ExternalIP (k3s node-external-ip), when the inventory chooses it. */
  readonly externalAddress?: string
  readonly ssh: ResolvedSsh
  readonly labels: Readonly<Record<string, string>>
  readonly taints: readonly string[]
  readonly hostKey: string | null
  readonly service: 'auto' | 'systemd' | 'openrc' | 'none'
  /** Take over a k3s found there that hybrid did not install (default false: such a worker is refused). */
  readonly adopt?: boolean
  /** The agent's settings (spec.agent merged with the worker's); absent in records of older hybrids. */
  readonly agent?: AgentSettings
  /** spec.k3s.distribute peers: the workers that reach each other (default: the address's /24). */
  readonly group?: string
}
