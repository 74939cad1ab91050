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
  readonly upgrade: UpgradeSettings
  readonly workers: readonly WorkerSpec[]
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
}

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
export interface ResolvedSsh extends Omit<SshSettings, 'bastion'> {
  readonly bastion: ResolvedBastion | null
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
}
