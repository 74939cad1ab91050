import {readFile} from 'node:fs/promises'

import {stringify} from 'yaml'

import {HybridError, messageOf} from '../errors.js'
import type {PasswordSource, RegistriesSettings} from '../inventory/model.js'
import {registerSecret} from '../log/redact.js'
import {takeSecretEnv} from '../util/secret-env.js'

/**
 * k3s's /etc/rancher/k3s/registries.yaml from spec.registries: `mirrors` as they are, `configs` with each
 * password read here, from the file or the variable the inventory names (the variable was taken out of the
 * environment when the inventory was loaded). The password is registered as a secret before anything could
 * log it, and travels only in this file's content (0600, over the connection's stdin).
 */

async function password(registry: string, source: PasswordSource): Promise<string> {
  if (source.kind === 'env') {
    const value = takeSecretEnv(source.env)
    if (value === undefined || value === '')
      throw new HybridError(
        'AGENT_FILE_UNREADABLE',
        `the password of registry ${registry} is to come from the environment variable ${source.env}, which is not set`,
        {exitCode: 2},
      )
    registerSecret(value)
    return value
  }
  try {
    const value = (await readFile(source.file, 'utf8')).replace(/\r?\n$/, '')
    registerSecret(value)
    return value
  } catch (error) {
    throw new HybridError(
      'AGENT_FILE_UNREADABLE',
      `cannot read the password of registry ${registry} (${source.file}): ${messageOf(error)}`,
      {exitCode: 2},
    )
  }
}

/** The file's text, as k3s reads it (its key names: endpoint, rewrite, auth, tls, ca_file, …). */
export async function registriesYaml(settings: RegistriesSettings): Promise<string> {
  const configs: Record<string, unknown> = {}
  for (const [registry, config] of Object.entries(settings.configs)) {
    const {auth, tls} = config
    configs[registry] = {
      ...(auth ? {auth: {username: auth.username, password: await password(registry, auth.password)}} : {}),
      ...(tls
        ? {
            tls: {
              ...(tls.caFile ? {ca_file: tls.caFile} : {}),
              ...(tls.certFile ? {cert_file: tls.certFile} : {}),
              ...(tls.keyFile ? {key_file: tls.keyFile} : {}),
              ...(tls.insecureSkipVerify !== undefined ? {insecure_skip_verify: tls.insecureSkipVerify} : {}),
            },
          }
        : {}),
    }
  }
  const document = {mirrors: settings.mirrors, configs}
  return `# Written by hybrid from spec.registries; changes are replaced on the next hybrid up.\n${stringify(document)}`
}
