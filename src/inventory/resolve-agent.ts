import type {AgentConfigValue, AgentFileSpec, AgentSettings, ImagesSettings, RegistriesSettings} from './model.js'
import type {AgentSettingsDocument, ImagesDocument, RegistriesDocument} from './schema-agent.js'

/**
 * The agent's settings as the rest of hybrid reads them: a worker's `agent` merged over `spec.agent` key by
 * key (a worker's `kubelet-arg` replaces the cluster's; environment variables one by one; files by their
 * destination), local paths made absolute.
 */

type From = (path: string) => string

function configOf(document: AgentSettingsDocument | undefined): Record<string, AgentConfigValue> {
  const config: Record<string, AgentConfigValue> = {}
  for (const [key, value] of Object.entries(document ?? {})) {
    if (key === 'environment' || key === 'files') continue
    config[key] = Array.isArray(value) ? value.map(String) : (value as string | boolean | number)
  }
  return config
}

function filesOf(document: AgentSettingsDocument | undefined, from: From): AgentFileSpec[] {
  return (document?.files ?? []).map((file) => ({
    source: from(file.source),
    destination: file.destination,
    mode: parseInt(file.mode ?? '0644', 8),
  }))
}

export function resolveAgent(
  cluster: AgentSettingsDocument | undefined,
  worker: AgentSettingsDocument | undefined,
  from: From,
): AgentSettings {
  const files = new Map<string, AgentFileSpec>()
  for (const file of [...filesOf(cluster, from), ...filesOf(worker, from)]) files.set(file.destination, file)
  return {
    config: {...configOf(cluster), ...configOf(worker)},
    environment: {...(cluster?.environment ?? {}), ...(worker?.environment ?? {})},
    files: [...files.values()],
  }
}

export function resolveRegistries(document: RegistriesDocument, from: From): RegistriesSettings {
  const configs: Record<string, RegistriesSettings['configs'][string]> = {}
  for (const [registry, config] of Object.entries(document.configs)) {
    const auth = config.auth
    configs[registry] = {
      ...(auth
        ? {
            auth: {
              username: auth.username,
              // The cross-checks guarantee exactly one of passwordFile and passwordEnv.
              password:
                auth.passwordFile !== undefined
                  ? {kind: 'file' as const, file: from(auth.passwordFile)}
                  : {kind: 'env' as const, env: auth.passwordEnv!},
            },
          }
        : {}),
      ...(config.tls ? {tls: {...config.tls}} : {}),
    }
  }
  return {mirrors: structuredClone(document.mirrors), configs}
}

export function resolveImages(document: ImagesDocument, from: From): ImagesSettings {
  return {archives: document.archives.map(from), flannelRegistry: document.flannelRegistry}
}
