import {readFileSync} from 'node:fs'

import {KubeConfig} from '@kubernetes/client-node'

import {HybridError, messageOf} from '../errors.js'

/**
 * A client configuration from a kubeconfig file (the one k3s writes, or the user's copy). The file's
 * content is a secret: it is read here and never logged.
 */
export function kubeConfigFromFile(file: string): KubeConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new HybridError(
      'KUBECONFIG_UNREADABLE',
      `cannot read the kubeconfig ${file}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`,
    )
  }
  return kubeConfigFromString(text, file)
}

/** The same from text; `source` names it in the error. */
export function kubeConfigFromString(text: string, source = 'the kubeconfig'): KubeConfig {
  const kc = new KubeConfig()
  try {
    kc.loadFromString(text)
  } catch (error) {
    throw new HybridError(
      'KUBECONFIG_INVALID',
      `${source} is not a usable kubeconfig: ${messageOf(error).split('\n')[0]}`,
    )
  }
  if (!kc.getCurrentCluster()) throw new HybridError('KUBECONFIG_INVALID', `${source} names no current cluster`)
  return kc
}

/** The API server's URL from a client configuration. */
export function serverOf(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? ''
}

/** HTTP status of an API error, if it carries one. */
export function statusOf(error: unknown): number | undefined {
  const code = (error as {code?: unknown} | null)?.code
  return typeof code === 'number' ? code : undefined
}
