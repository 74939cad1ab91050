import {parse} from 'yaml'

/**
 * The forms a secret may take in a log line or a command's output, for tests that assert it appears in
 * none: as it is, base64 (standard and URL-safe), JSON-escaped (inside a JSON string), URL-encoded, hex.
 */
export function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret)
  return unique([
    secret,
    bytes.toString('base64'),
    bytes.toString('base64url'),
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    bytes.toString('hex'),
  ])
}

/**
 * A base64 `*-data` value of a kubeconfig in every form: the value itself, the PEM text it decodes to,
 * that PEM's body (the DER) as one base64 run and line by line, the DER in hex, each of those encoded
 * as encodedForms does. Forms shorter than 16 characters (a PEM's short last line) are left out: they
 * could occur by chance.
 */
export function pemDataForms(base64: string): string[] {
  const pem = Buffer.from(base64, 'base64').toString('utf8')
  const body = pem
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('-----'))
    .map((line) => line.trim())
  const der = Buffer.from(body.join(''), 'base64')
  return unique(
    [base64, pem, body.join(''), ...body, der.toString('hex')].flatMap((form) => encodedForms(form)),
  ).filter((form) => form.length >= 16)
}

/**
 * The secrets of a kubeconfig's users, by name ("client-key-data of user lab", "token of user lab"),
 * each in every form it may take.
 */
export function kubeconfigSecrets(text: string): Map<string, string[]> {
  const doc = parse(text) as {users?: Array<{name: string; user?: Record<string, unknown>}>}
  const secrets = new Map<string, string[]>()
  for (const {name, user} of doc.users ?? []) {
    for (const field of ['client-key-data', 'client-certificate-data'])
      if (typeof user?.[field] === 'string') secrets.set(`${field} of user ${name}`, pemDataForms(user[field]))
    for (const field of ['token', 'password'])
      if (typeof user?.[field] === 'string') secrets.set(`${field} of user ${name}`, encodedForms(user[field]))
  }
  return secrets
}

/** Where any form of any secret occurs: "WHERE holds SECRET (as FORM…)", one entry each; empty: nowhere. */
export function secretsFound(texts: ReadonlyMap<string, string>, secrets: ReadonlyMap<string, string[]>): string[] {
  const found: string[] = []
  for (const [where, text] of texts)
    for (const [what, forms] of secrets) {
      const form = forms.find((f) => text.includes(f))
      if (form !== undefined) found.push(`${where} holds the ${what} (as ${JSON.stringify(form.slice(0, 24))}…)`)
    }
  return found
}

function unique(values: string[]): string[] {
  return [...new Set(values)]
}
