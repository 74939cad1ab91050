import {type Static, Type as T} from '@sinclair/typebox'

import {AgentSettings, Images, Registries} from './schema-agent.js'

/**
 * The inventory format of docs/architecture.md, "The inventory": the contract. This schema is the single source of the types
 * below, of the validation (Ajv, all errors at once), of the defaults, and of inventory/schema.json.
 * Checks that span fields (unique names, exactly one token source, hostKey for `pinned`) live in
 * cross-checks.ts; formats (DNS-1123, IP or host name, taints, labels) in formats.ts.
 */

const strict = {additionalProperties: false} as const
const Nullable = <S extends ReturnType<typeof T.String>>(schema: S) => T.Union([schema, T.Null()])

export const Dns1123Label = T.String({
  format: 'dns1123-label',
  description: 'a DNS-1123 label: lower-case letters, digits and "-", at most 63 characters',
})
export const Port = T.Integer({minimum: 1, maximum: 65535})

export const HostKeyPolicy = T.Union([T.Literal('strict'), T.Literal('accept-new'), T.Literal('pinned')])
export const SudoMode = T.Union([T.Literal('auto'), T.Literal('never'), T.Literal('nopasswd'), T.Literal('password')])
export const ServiceManager = T.Union([T.Literal('auto'), T.Literal('systemd'), T.Literal('openrc'), T.Literal('none')])

/**
 * The workaround ids, in the order `up` applies them (and `down` undoes them in reverse): the one list the
 * registry in src/sandbox/workarounds/ is built from.
 */
export const WORKAROUND_IDS = [
  'snapshotter',
  'cadvisor',
  'procsys',
  'kmsg',
  'flannel',
  'egress',
  'taint',
  'cgroups',
  'iptables',
  'cnibin',
] as const

export const WorkaroundId = T.Union(WORKAROUND_IDS.map((id) => T.Literal(id)))

export const Bastion = T.Object(
  {
    address: T.String({format: 'host', description: 'IP or DNS name of the jump host'}),
    port: T.Optional(Port),
    user: T.Optional(T.String({minLength: 1})),
    identityFile: T.Optional(T.String({minLength: 1})),
  },
  strict,
)

/** SSH settings: `spec.ssh` gives defaults for every worker, `workers[].ssh` overrides any key. */
const sshFields = {
  user: T.String({minLength: 1, description: 'login user'}),
  port: Port,
  identityFile: Nullable(
    T.String({minLength: 1, description: 'private key file; null: use ssh-agent (SSH_AUTH_SOCK)'}),
  ),
  knownHosts: T.String({minLength: 1}),
  hostKeyPolicy: HostKeyPolicy,
  sudo: SudoMode,
  bastion: T.Union([Bastion, T.Null()]),
  proxy: Nullable(T.String({format: 'ssh-proxy', description: '"http://host:port" or "env" (HTTPS_PROXY)'})),
  connectTimeoutSeconds: T.Integer({minimum: 1, maximum: 3600}),
  config: T.Union([T.Boolean(), T.String({minLength: 1}), T.Null()], {
    description:
      'an OpenSSH client config file (true: ~/.ssh/config) for HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile and StrictHostKeyChecking; fields set in the inventory win',
  }),
  passphraseEnv: T.String({
    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
    description: "the environment variable holding the identity file's passphrase (else: ssh-agent)",
  }),
  commandTimeoutSeconds: T.Integer({minimum: 1, maximum: 86400, description: 'a remote command is stopped after this'}),
  uploadTimeoutSeconds: T.Integer({minimum: 1, maximum: 86400, description: 'an upload is broken off after this'}),
  outputLimitBytes: T.Integer({
    minimum: 65536,
    maximum: 1073741824,
    description: 'a remote command that prints more than this is stopped',
  }),
}
export const SshDefaults = T.Object(
  {
    user: T.String({...sshFields.user, default: 'root'}),
    port: T.Integer({minimum: 1, maximum: 65535, default: 22}),
    identityFile: T.Union(sshFields.identityFile.anyOf, {default: '~/.ssh/id_ed25519'}),
    knownHosts: T.String({minLength: 1, default: '~/.ssh/known_hosts'}),
    hostKeyPolicy: T.Union(HostKeyPolicy.anyOf, {default: 'strict'}),
    sudo: T.Union(SudoMode.anyOf, {default: 'auto'}),
    bastion: T.Union([Bastion, T.Null()], {default: null}),
    proxy: T.Union(sshFields.proxy.anyOf, {default: null}),
    connectTimeoutSeconds: T.Integer({minimum: 1, maximum: 3600, default: 15}),
    config: T.Union(sshFields.config.anyOf, {description: sshFields.config.description, default: null}),
    passphraseEnv: T.Optional(sshFields.passphraseEnv),
    commandTimeoutSeconds: T.Integer({...sshFields.commandTimeoutSeconds, default: 120}),
    uploadTimeoutSeconds: T.Integer({...sshFields.uploadTimeoutSeconds, default: 1800}),
    outputLimitBytes: T.Integer({...sshFields.outputLimitBytes, default: 16777216}),
  },
  {...strict, default: {}},
)
export const SshOverrides = T.Partial(T.Object(sshFields, strict))

export const Worker = T.Object(
  {
    name: Dns1123Label,
    address: T.String({format: 'host', description: 'IP address or DNS name'}),
    internalAddress: T.Optional(
      T.String({
        format: 'ip',
        description:
          "the Node's InternalIP (k3s node-ip); it must be an address of one of the worker's interfaces. Default: address, when it is one",
      }),
    ),
    externalAddress: T.Optional(
      T.String({
        format: 'ip',
        description:
          "the Node's ExternalIP (k3s node-external-ip). Default: address, when it is an IP that is not on the worker's interfaces (NAT, a forwarded port)",
      }),
    ),
    ssh: T.Optional(SshOverrides),
    // TypeBox's Record drops the key's format, so the keys' rule is stated with propertyNames.
    labels: T.Record(T.String(), T.String({format: 'label-value'}), {
      default: {},
      propertyNames: {type: 'string', format: 'label-key'},
      description: 'Kubernetes labels of the Node',
    }),
    taints: T.Array(T.String({format: 'taint', description: '"key=value:Effect" or "key:Effect"'}), {default: []}),
    hostKey: T.Union([T.String({format: 'ssh-public-key'}), T.Null()], {default: null}),
    service: T.Union(ServiceManager.anyOf, {default: 'auto'}),
    group: T.Optional(
      T.String({
        format: 'dns1123-label',
        description:
          "spec.k3s.distribute peers: workers of one group reach each other; default: the /24 of the worker's IPv4 address",
      }),
    ),
    adopt: T.Boolean({
      default: false,
      description: 'take over a k3s found on the worker that hybrid did not install (it is removed on uninstall)',
    }),
    agent: T.Optional(AgentSettings),
  },
  strict,
)

export const K3s = T.Object(
  {
    version: T.String({
      pattern: '^v\\d+\\.\\d+\\.\\d+(-rc\\d+)?\\+k3s\\d+$',
      default: 'v1.34.1+k3s1',
      description: 'a k3s release such as v1.34.1+k3s1',
    }),
    binary: T.Optional(T.String({minLength: 1, description: 'local k3s binary instead of downloading'})),
    sha256: T.Optional(
      T.String({pattern: '^[0-9a-f]{64}$', description: 'a sha256 digest (64 lower-case hexadecimal digits)'}),
    ),
    mirror: T.Union([T.String({format: 'uri'}), T.Null()], {default: null}),
    image: T.String({minLength: 1, default: 'docker.io/rancher/k3s'}),
    distribute: T.Union([T.Literal('coordinator'), T.Literal('peers'), T.Literal('worker-download')], {
      default: 'coordinator',
      description:
        'how the k3s binary reaches the workers: coordinator (uploaded to each over SSH), peers (to one worker per group, which serves the others), worker-download (each worker fetches the release itself); a worker that cannot gets it from the coordinator',
    }),
  },
  {...strict, default: {}},
)

export const Token = T.Object(
  {
    file: T.Optional(T.String({minLength: 1})),
    env: T.Optional(T.String({pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'an environment variable name'})),
  },
  {...strict, default: {}},
)

export const Workarounds = T.Union([
  T.Literal('auto'),
  T.Literal('all'),
  T.Literal('none'),
  T.Array(WorkaroundId, {uniqueItems: true, description: 'a list of workaround ids'}),
])

/** Encrypted snapshots of the control plane, kept on workers (docs/architecture.md, "Snapshots and restore"). */
export const Snapshots = T.Object(
  {
    to: T.Array(Dns1123Label, {
      minItems: 1,
      uniqueItems: true,
      description: 'the workers (by name) that keep a copy of every snapshot',
    }),
    every: T.String({
      pattern: '^[1-9][0-9]*(s|m|h)$',
      default: '10m',
      description: 'how often the supervisor takes one, e.g. 30s, 10m, 1h',
    }),
    keep: T.Integer({minimum: 1, maximum: 100, default: 5, description: 'snapshots kept on each worker'}),
  },
  strict,
)

export const ControlPlane = T.Object(
  {
    dataDir: T.Optional(
      T.String({minLength: 1, description: 'k3s --data-dir; default /var/lib/hybrid/<metadata.name>'}),
    ),
    agent: T.Boolean({default: true}),
    workarounds: T.Union(Workarounds.anyOf, {default: 'auto'}),
    advertiseAddress: T.String({format: 'ipv4', default: '100.64.255.1'}),
    apiPort: T.Integer({minimum: 1, maximum: 65535, default: 6443}),
    extraArgs: T.Array(T.String(), {default: []}),
    snapshots: T.Optional(Snapshots),
  },
  {...strict, default: {}},
)

export const Network = T.Object(
  {
    mode: T.Union([T.Literal('tunnel'), T.Literal('direct')], {default: 'tunnel'}),
    cni: T.Union([T.Literal('auto'), T.Literal('flannel'), T.Literal('none')], {default: 'auto'}),
    manageSshd: T.Boolean({default: true}),
  },
  {...strict, default: {}},
)

export const Upgrade = T.Object(
  {
    maxUnavailable: T.Integer({
      minimum: 1,
      maximum: 256,
      default: 1,
      description: 'workers upgraded (cordoned, drained, restarted) at once when spec.k3s.version changes',
    }),
    drainTimeoutSeconds: T.Integer({
      minimum: 1,
      maximum: 86400,
      default: 120,
      description:
        "how long a worker's drain may wait for PodDisruptionBudgets before that worker fails and the rollout stops",
    }),
  },
  {...strict, default: {}},
)

export const ClusterSpec = T.Object(
  {
    k3s: K3s,
    token: Token,
    controlPlane: ControlPlane,
    network: Network,
    ssh: SshDefaults,
    concurrency: T.Integer({minimum: 1, maximum: 256, default: 10}),
    agent: T.Optional(AgentSettings),
    registries: T.Optional(Registries),
    images: Images,
    upgrade: Upgrade,
    workers: T.Array(Worker, {default: []}),
  },
  // No default for spec itself: a token source is always needed, so a missing spec is one clear problem.
  strict,
)

export const Cluster = T.Object(
  {
    apiVersion: T.Literal('hybrid.dev/v1alpha1'),
    kind: T.Literal('Cluster'),
    metadata: T.Object({name: Dns1123Label}, strict),
    spec: ClusterSpec,
  },
  {
    ...strict,
    $id: 'https://hybrid.dev/schemas/inventory-v1alpha1.json',
    title: 'hybrid inventory (hybrid.dev/v1alpha1 Cluster)',
  },
)

/** The inventory as written, after defaults. */
export type ClusterDocument = Static<typeof Cluster>
export type WorkerDocument = Static<typeof Worker>
export type SshSettings = Static<typeof SshDefaults>
export type HostKeyPolicyName = Static<typeof HostKeyPolicy>
export type WorkaroundName = Static<typeof WorkaroundId>
export type WorkaroundsSetting = Static<typeof Workarounds>
