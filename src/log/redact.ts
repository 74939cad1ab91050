/**
 * Redaction of secrets (docs/architecture.md, "Secrets and signals": tokens, passwords, private keys and kubeconfigs never reach a log,
 * the terminal or a JSON document). Two ways a secret is found:
 *  - by field name, at any depth (`token`, `password`, `client-key-data`, …): the value is replaced;
 *  - by value, anywhere inside any string (messages, `err.stack`, nested fields): secrets registered at
 *    run time with `registerSecret`, and text shaped like one (k3s tokens, PEM private keys, base64
 *    kubeconfig key data, bearer tokens).
 * The logger applies `redactLine` to every line before any sink sees it; commands apply `redactString`
 * to anything else they print.
 */

import {printable} from './printable.js'

export const REDACTED = '[redacted]'

/**
 * Field names whose values are secrets, compared without case, `-` or `_` (so `client-key-data`,
 * `clientKeyData` and `CLIENT_KEY_DATA` are one name). Names ending in one of SECRET_SUFFIXES count too
 * (`clusterToken`, `sudoPassword`), but not e.g. `tokenFile`, which is a path.
 */
const SECRET_KEYS = new Set([
  'token',
  'password',
  'passwd',
  'privatekey',
  'passphrase',
  'kubeconfig',
  'clientkeydata',
  'clientkey',
  'secret',
  'apikey',
  'authorization',
  'cookie',
])
const SECRET_SUFFIXES = ['token', 'password', 'passphrase', 'privatekey', 'secret', 'keydata']

/** The field paths named in docs/architecture.md, as a user reads them (for documentation and tests). */
export const REDACT_KEYS: readonly string[] = [
  'token',
  'password',
  'privateKey',
  'passphrase',
  'kubeconfig',
  'client-key-data',
  'secret',
  'authorization',
]

export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '')
  return SECRET_KEYS.has(k) || SECRET_SUFFIXES.some((s) => k.endsWith(s))
}

/** Registered secrets shorter than this are not matched by value: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 6

const registered = new Set<string>()
let registeredPattern: RegExp | undefined

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * From now on, `value` is replaced by `[redacted]` wherever it appears in anything logged or printed
 * through redactString (e.g. the cluster token once it is read from its file). Its base64 form and
 * its JSON-escaped form are registered with it. Returns whether it was registered (too short is not).
 */
export function registerSecret(value: string | undefined | null): boolean {
  if (!value) return false
  const trimmed = value.trim()
  if (trimmed.length < MIN_SECRET_LENGTH) return false
  const base64 = Buffer.from(trimmed).toString('base64')
  const forms = [trimmed, base64, base64.replace(/=+$/, ''), JSON.stringify(trimmed).slice(1, -1)]
  for (const form of forms) registered.add(form)
  registeredPattern = undefined
  return true
}

/** Forget every registered secret (tests; a long-lived process switching clusters). */
export function clearSecrets(): void {
  registered.clear()
  registeredPattern = undefined
}

function secretsPattern(): RegExp | undefined {
  if (registered.size === 0) return undefined
  // Longest first, so a secret that contains another is replaced whole.
  registeredPattern ??= new RegExp(
    [...registered]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join('|'),
    'g',
  )
  return registeredPattern
}

/** A base64 blob that decodes to a PEM private key ("-----BEGIN " is "LS0tLS1CRUdJTi" in base64). */
function base64PemKey(blob: string): boolean {
  return /PRIVATE KEY/.test(Buffer.from(blob, 'base64').toString('latin1'))
}

/** Secret-shaped text. Each pattern's replacer keeps the part that says what was there. */
const SHAPES: ReadonlyArray<[RegExp, (match: string, ...groups: string[]) => string]> = [
  // PEM private key blocks (PKCS#1, PKCS#8, EC, OpenSSH, encrypted), also when cut off before the END line.
  [
    /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g,
    (_m, kind: string) => `-----BEGIN ${kind}PRIVATE KEY----- ${REDACTED} -----END ${kind}PRIVATE KEY-----`,
  ],
  // k3s secure token: K10<sha256 of the CA>::<user>:<password>.
  [/K10[0-9a-fA-F]{16,}::[^\s:"'`,;]+:[^\s"'`,;]+/g, () => REDACTED],
  // k3s short token `server:<secret>` (not `server:6443`, not `https://server:…`). Not `node:`: stack
  // traces are full of `node:internal/…`.
  [
    /(?<![\w/.@-])server:([A-Za-z0-9_+/=.~-]{8,})/g,
    (m, secret: string) => (/^\d+$/.test(secret) ? m : `server:${REDACTED}`),
  ],
  // Kubernetes bootstrap tokens: <6>.<16>.
  [/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, () => REDACTED],
  // kubeconfig key data and key-like YAML/JSON/env fields inside text.
  [
    /(client-key-data|client-key|(?:token|password|passphrase|secret)(?=["']?\s*[:=]))(["']?\s*[:=]\s*["']?)(?![/~.])([A-Za-z0-9_+/=.~:-]{8,})/gi,
    (m, key: string, sep: string, value: string) =>
      /^(?:token|password|passphrase|secret)$/i.test(key) && value.length < 16 ? m : `${key}${sep}${REDACTED}`,
  ],
  // HTTP bearer tokens.
  [/(Bearer\s+)[A-Za-z0-9_+/=.~-]{8,}/g, (_m, prefix: string) => `${prefix}${REDACTED}`],
  // base64 of a PEM private key (a kubeconfig's client-key-data pasted anywhere).
  [/LS0tLS1CRUdJTi[A-Za-z0-9+/=]{20,}/g, (m) => (base64PemKey(m) ? REDACTED : m)],
]

/**
 * `text` with every registered secret and every secret-shaped part replaced by `[redacted]`, and its
 * control characters escaped (printable.ts): what every log line and printed sentence passes through.
 */
export function redactString(text: string): string {
  let out = text
  const pattern = secretsPattern()
  if (pattern) out = out.replace(pattern, REDACTED)
  for (const [shape, replacer] of SHAPES) out = out.replace(shape, replacer)
  return printable(out)
}

/**
 * A deep copy of `value` with secrets removed: fields with a secret name lose their value (objects
 * and arrays under such a name are searched instead, so `token: {file: …}` keeps its path), and every
 * string is passed through redactString. Returns the same object when nothing changed.
 */
export function redactValue<T>(value: T): T {
  return walk(value, false) as T
}

function walk(value: unknown, secretField: boolean): unknown {
  if (typeof value === 'string') return secretField && value !== '' ? REDACTED : redactString(value)
  if (typeof value === 'number' || typeof value === 'bigint') return secretField ? REDACTED : value
  if (Array.isArray(value)) {
    let changed = false
    const out = value.map((item) => {
      const next = walk(item, secretField)
      changed ||= next !== item
      return next
    })
    return changed ? out : value
  }
  if (value !== null && typeof value === 'object') {
    let changed = false
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      const next = walk(item, isSecretKey(key))
      changed ||= next !== item
      out[key] = next
    }
    return changed ? out : value
  }
  return value
}

/**
 * One serialized JSON log line, redacted. The line is parsed so that patterns see real newlines (a PEM
 * block inside `err.stack`) and field names at any depth; a line that is not JSON is redacted as text.
 */
export function redactLine(line: string): string {
  const trailing = line.endsWith('\n') ? '\n' : ''
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return redactString(line)
  }
  const redacted = redactValue(parsed)
  return redacted === parsed ? line : JSON.stringify(redacted) + trailing
}
