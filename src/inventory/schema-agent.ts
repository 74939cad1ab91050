import {type Static, Type as T} from '@sinclair/typebox'

/**
 * The inventory's settings for the workers' k3s agents (docs/architecture.md, "Agent settings, registries
 * and images"): part of the schema in schema.ts, kept here by concern.
 */

const strict = {additionalProperties: false} as const

export const EnvName = T.String({pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'an environment variable name'})

/** A file hybrid uploads to a worker for its agent (recorded, so uninstall removes exactly these). */
export const AgentFile = T.Object(
  {
    source: T.String({minLength: 1, description: 'a local file (relative to the inventory file)'}),
    destination: T.String({pattern: '^/[^\\0]*[^/]$', description: 'an absolute file path on the worker'}),
    mode: T.String({
      pattern: '^0?[0-7]{3}$',
      default: '0644',
      description: 'octal permission bits in quotes, e.g. "0600"',
    }),
  },
  strict,
)

/**
 * The k3s agent's settings: `spec.agent` for every worker, `workers[].agent` merged over it key by key.
 * Every key but `environment` and `files` is a k3s agent flag name (config.yaml's keys), checked in
 * agent-checks.ts against src/agent/k3s-agent-flags.ts.
 */
export const AgentSettings = T.Object(
  {
    environment: T.Optional(
      T.Record(T.String(), T.String({pattern: "^[^'\\n\\r]*$", description: 'a value without quote or line break'}), {
        propertyNames: {type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$'},
        description: "the agent's environment (HTTP_PROXY, NO_PROXY, …): its service's env file, never argv",
      }),
    ),
    files: T.Optional(T.Array(AgentFile, {description: 'files to upload to the worker'})),
  },
  {
    additionalProperties: T.Union([T.String(), T.Boolean(), T.Number(), T.Array(T.String())]),
    description: 'k3s agent config keys (kubelet-arg, flannel-iface, node-label, …), environment and files',
  },
)

export const RegistryMirror = T.Object(
  {
    endpoint: T.Array(T.String({format: 'uri'}), {minItems: 1, description: 'registry URLs tried in order'}),
    rewrite: T.Optional(T.Record(T.String(), T.String(), {description: 'regular expression → replacement'})),
  },
  strict,
)

export const RegistryConfig = T.Object(
  {
    auth: T.Optional(
      T.Object(
        {
          username: T.String({minLength: 1}),
          passwordFile: T.Optional(T.String({minLength: 1, description: 'a local file holding the password'})),
          passwordEnv: T.Optional(EnvName),
        },
        strict,
      ),
    ),
    tls: T.Optional(
      T.Object(
        {
          caFile: T.Optional(T.String({pattern: '^/', description: 'a path on the worker'})),
          certFile: T.Optional(T.String({pattern: '^/', description: 'a path on the worker'})),
          keyFile: T.Optional(T.String({pattern: '^/', description: 'a path on the worker'})),
          insecureSkipVerify: T.Optional(T.Boolean()),
        },
        strict,
      ),
    ),
  },
  strict,
)

/** k3s's registries.yaml (mirrors and configs), with passwords named by file or variable, never inline. */
export const Registries = T.Object(
  {
    mirrors: T.Record(T.String(), RegistryMirror, {default: {}}),
    configs: T.Record(T.String(), RegistryConfig, {default: {}}),
  },
  strict,
)

export const Images = T.Object(
  {
    archives: T.Array(T.String({minLength: 1}), {
      default: [],
      description: "image archives (.tar, .tar.gz, .tar.zst, …) for every worker's agent/images directory",
    }),
    flannelRegistry: T.String({
      pattern: '^[^/\\s]+(/[^\\s]+)?$',
      default: 'ghcr.io',
      description:
        "where the flannel images hybrid deploys come from: a registry host (and path) mirroring ghcr.io's flannel-io",
    }),
  },
  {...strict, default: {}},
)

export type AgentSettingsDocument = Static<typeof AgentSettings> & Record<string, unknown>
export type RegistriesDocument = Static<typeof Registries>
export type ImagesDocument = Static<typeof Images>
