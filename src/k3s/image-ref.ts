import {isIP} from 'node:net'

import {HybridError} from '../errors.js'

/**
 * An image reference as `docker pull` reads it (`docker.io/rancher/k3s`, `rancher/k3s`,
 * `127.0.0.1:5000/rancher/k3s:tag`, `…@sha256:…`), mapped to where its registry's HTTP API lives.
 */
export interface ImageRef {
  /** The registry as written (`docker.io`, `127.0.0.1:5000`), for messages. */
  registry: string
  /** Base URL of the registry API, ending in `/v2/`. */
  apiBase: string
  /** `rancher/k3s` */
  repository: string
  /** The tag or `sha256:…` digest to fetch. */
  reference: string
  /** `docker.io/rancher/k3s:v1.34.1-k3s1`, for messages. */
  display: string
}

export const DEFAULT_IMAGE = 'docker.io/rancher/k3s'

/** The k3s images' tag for a release: `+` is not allowed in tags, so v1.34.1+k3s1 → v1.34.1-k3s1. */
export function imageTag(version: string): string {
  return version.replace(/\+/g, '-')
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DIGEST = /^sha256:[0-9a-f]{64}$/

/** Parse `image`; without a tag or digest in it, `defaultTag` is used. Bad references are bad inventory (exit 2). */
export function parseImageRef(image: string, defaultTag: string): ImageRef {
  const bad = (why: string) =>
    new HybridError('INVENTORY_INVALID', `spec.k3s.image "${image}" is not an image reference (${why}).`, {exitCode: 2})
  let rest = image.trim()
  let reference = defaultTag
  const at = rest.indexOf('@')
  if (at !== -1) {
    reference = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(reference)) throw bad('a digest is sha256: and 64 hex digits')
  }
  const parts = rest.split('/')
  let registry = 'docker.io'
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift() as string
  }
  const last = parts.length - 1
  const colon = parts[last].indexOf(':')
  if (colon !== -1) {
    const tag = parts[last].slice(colon + 1)
    parts[last] = parts[last].slice(0, colon)
    if (at === -1) reference = tag
    if (!TAG.test(tag)) throw bad(`"${tag}" is not a tag`)
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library')
  if (parts.some((part) => !COMPONENT.test(part)))
    throw bad('repository names are lower-case letters, digits and . _ - separated by /')
  if (!DIGEST.test(reference) && !TAG.test(reference)) throw bad(`"${reference}" is not a tag`)
  const repository = parts.join('/')
  const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry
  const scheme = isLoopback(host) ? 'http' : 'https'
  const separator = DIGEST.test(reference) ? '@' : ':'
  return {
    registry,
    apiBase: `${scheme}://${host}/v2/`,
    repository,
    reference,
    display: `${registry}/${repository}${separator}${reference}`,
  }
}

/** Plain HTTP is only ever used for a registry on this machine's loopback (tests, a local mirror). */
function isLoopback(hostPort: string): boolean {
  const host = hostPort.startsWith('[') ? hostPort.slice(1, hostPort.indexOf(']')) : hostPort.replace(/:\d+$/, '')
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return isIP(host) === 6 && host === '::1'
}
