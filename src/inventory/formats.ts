import {isIP, isIPv4} from 'node:net'

/**
 * The custom string formats of the inventory schema (schema.ts names them with `format`). One table
 * serves three readers: Ajv (`check`), the error sentences (`noun` and the reason `check` returns) and
 * the JSON Schema export (`description`, and `pattern` where a regular expression can say the rule,
 * so editors validate it too).
 */
export interface FormatRule {
  /** What a valid value is, completing "… is not ___": "an IP address or host name". */
  readonly noun: string
  /** For inventory/schema.json. */
  readonly description: string
  /** The same rule as a regular expression, for editors (only where one says it exactly). */
  readonly pattern?: string
  /** undefined when valid; otherwise why not ('' when the noun says it all). */
  readonly check: (value: string) => string | undefined
}

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const
export const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/
/** Kubernetes "qualified name" part and label value: alphanumerics, '-', '_', '.', alphanumeric ends. */
const K8S_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/

function dnsLabelReason(value: string): string | undefined {
  if (value === '') return 'it is empty'
  if (value.length > 63) return `it has ${value.length} characters, more than 63`
  if (DNS_LABEL.test(value)) return undefined
  if (DNS_LABEL.test(value.toLowerCase())) return 'use lower case'
  return 'only lower-case letters, digits and "-", starting and ending with a letter or digit'
}

/** A DNS-1123 subdomain: dot-separated DNS labels, at most 253 characters. */
function dnsSubdomainReason(value: string): string | undefined {
  if (value.length > 253) return `it has ${value.length} characters, more than 253`
  const bad = value.split('.').find((label) => dnsLabelReason(label) !== undefined)
  return bad === undefined ? undefined : `"${bad}" is not a lower-case DNS label`
}

function hostNameOk(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false
  const labels = value.split('.')
  if (!labels.every((label) => label.length <= 63 && HOST_LABEL.test(label))) return false
  // "10.0.0.300" is a broken IP address, not a name: a top-level label is never all digits.
  return !/^\d+$/.test(labels.at(-1)!)
}

function labelKeyReason(value: string): string | undefined {
  const slash = value.lastIndexOf('/')
  const prefix = slash >= 0 ? value.slice(0, slash) : undefined
  const name = slash >= 0 ? value.slice(slash + 1) : value
  if (prefix !== undefined) {
    if (prefix === '') return 'the prefix before "/" is empty'
    const reason = dnsSubdomainReason(prefix)
    if (reason !== undefined)
      return `the prefix "${prefix}" is not a DNS subdomain (${reason || 'lower-case labels separated by "."'})`
  }
  if (name === '') return 'the name is empty'
  if (name.length > 63) return `the name has ${name.length} characters, more than 63`
  if (!K8S_NAME.test(name))
    return 'the name may hold only letters, digits, "-", "_" and "." and must start and end with a letter or digit'
  return undefined
}

function labelValueReason(value: string): string | undefined {
  if (value === '') return undefined
  if (value.length > 63) return `it has ${value.length} characters, more than 63`
  if (!K8S_NAME.test(value))
    return 'it may hold only letters, digits, "-", "_" and "." and must start and end with a letter or digit'
  return undefined
}

function taintReason(value: string): string | undefined {
  const colon = value.lastIndexOf(':')
  if (colon < 0) return `the effect is missing (":NoSchedule", ":PreferNoSchedule" or ":NoExecute")`
  const effect = value.slice(colon + 1)
  const keyValue = value.slice(0, colon)
  const eq = keyValue.indexOf('=')
  const key = eq >= 0 ? keyValue.slice(0, eq) : keyValue
  if (key === '') return 'the key is empty'
  const keyReason = labelKeyReason(key)
  if (keyReason !== undefined) return `the key "${key}" is not a label key: ${keyReason}`
  if (eq >= 0) {
    const valueReason = labelValueReason(keyValue.slice(eq + 1))
    if (valueReason !== undefined) return `the value is not a label value: ${valueReason}`
  }
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect))
    return `the effect "${effect}" is not one of ${TAINT_EFFECTS.join(', ')}`
  return undefined
}

function sshPublicKeyReason(value: string): string | undefined {
  const match = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: .*)?$/.exec(value.trim())
  if (!match) return 'expected "TYPE BASE64 [comment]"'
  const [, type, base64] = match
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type))
    return `the key type "${type}" is not one of ${SSH_KEY_TYPES.join(', ')}`
  const blob = Buffer.from(base64, 'base64')
  // The key blob starts with its own type as an SSH string (uint32 length, bytes): a cheap integrity check.
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : -1
  if (
    blob.toString('base64') !== base64 ||
    length !== type.length ||
    blob.subarray(4, 4 + length).toString('latin1') !== type
  ) {
    return `its base64 part is not a valid ${type} key`
  }
  return undefined
}

function sshProxyReason(value: string): string | undefined {
  if (value === 'env') return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return ''
  }
  if (url.protocol !== 'http:')
    return `the scheme is "${url.protocol.slice(0, -1)}", expected http (an HTTP CONNECT proxy)`
  if (!/^http:\/\/[^/]+:\d+\/?$/.test(value)) return 'expected exactly "http://host:port"'
  return undefined
}

function uriReason(value: string): string | undefined {
  try {
    const url = new URL(value)
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return `the scheme is "${url.protocol.slice(0, -1)}", expected http or https`
    return url.host === '' ? 'the host is missing' : undefined
  } catch {
    return ''
  }
}

export const FORMATS = {
  'dns1123-label': {
    noun: 'a DNS-1123 label',
    description:
      'a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
    pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
    check: dnsLabelReason,
  },
  host: {
    noun: 'an IP address or host name',
    description: 'an IPv4 or IPv6 address, or a DNS host name',
    check: (value) => (isIP(value) !== 0 || hostNameOk(value) ? undefined : ''),
  },
  ip: {
    noun: 'an IP address',
    description: 'an IPv4 or IPv6 address (a DNS name is not a Node address)',
    check: (value) => (isIP(value) !== 0 ? undefined : ''),
  },
  ipv4: {
    noun: 'an IPv4 address',
    description: 'an IPv4 address in dotted-decimal form',
    pattern: '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$',
    check: (value) => (isIPv4(value) ? undefined : ''),
  },
  'label-key': {
    noun: 'a Kubernetes label key',
    description:
      'a Kubernetes label key: an optional DNS subdomain prefix and "/", then a name of at most 63 letters, digits, "-", "_" or "." starting and ending with a letter or digit',
    check: labelKeyReason,
  },
  'label-value': {
    noun: 'a Kubernetes label value',
    description:
      'a Kubernetes label value: empty, or at most 63 letters, digits, "-", "_" or "." starting and ending with a letter or digit',
    pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$',
    check: labelValueReason,
  },
  taint: {
    noun: 'a taint',
    description: `a Kubernetes taint: "key=value:Effect" or "key:Effect", key and value as for labels, Effect one of ${TAINT_EFFECTS.join(', ')}`,
    check: taintReason,
  },
  'ssh-public-key': {
    noun: 'an SSH public key',
    description: `an SSH public key as in known_hosts without the host name: "TYPE BASE64 [comment]", TYPE one of ${SSH_KEY_TYPES.join(', ')}`,
    check: sshPublicKeyReason,
  },
  'ssh-proxy': {
    noun: 'an HTTP proxy',
    description: '"env" (use HTTPS_PROXY) or an HTTP CONNECT proxy as "http://host:port"',
    pattern: '^(env|http://[^/]+:[0-9]+/?)$',
    check: sshProxyReason,
  },
  uri: {
    noun: 'an http or https URL',
    description: 'an http:// or https:// URL',
    check: uriReason,
  },
} satisfies Record<string, FormatRule>

export type FormatName = keyof typeof FORMATS

export function isFormatName(name: string): name is FormatName {
  return Object.hasOwn(FORMATS, name)
}

/** The sentence for a value that fails `format`: `"10.0.0.300" is not an IP address or host name`. */
export function explainFormat(format: FormatName, value: string, shown: string = JSON.stringify(value)): string {
  const rule: FormatRule = FORMATS[format]
  const reason = rule.check(value)
  return `${shown} is not ${rule.noun}${reason ? `: ${reason}` : ''}`
}
