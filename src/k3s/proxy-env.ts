import {isIP} from 'node:net'

/**
 * Which proxy, if any, a request to a URL goes through, from the usual environment variables
 * (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, lower case first, as curl reads them). Sandboxes often let traffic
 * out only through such a proxy (docs/architecture.md, "The k3s binary").
 *
 * NO_PROXY is taken literally: unlike Go's http.ProxyFromEnvironment, loopback is not bypassed unless
 * NO_PROXY names it, as curl and undici do; so a proxy a user configured is really the one used.
 */
export type ProxyEnv = Record<string, string | undefined>

/** The proxy URL for `url`, or undefined for a direct connection. */
export function proxyFor(url: URL, env: ProxyEnv = process.env): string | undefined {
  // As curl and Go do: HTTPS_PROXY for https URLs, HTTP_PROXY for http ones, no crossing over.
  const proxy = pick(env, url.protocol === 'https:' ? 'https_proxy' : 'http_proxy')
  if (!proxy) return undefined
  if (bypassed(url, pick(env, 'no_proxy') ?? '')) return undefined
  // "host:port" without a scheme is common in the wild; curl reads it as http://.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`
}

function pick(env: ProxyEnv, lower: string): string | undefined {
  const value = env[lower] ?? env[lower.toUpperCase()]
  return value && value.trim() !== '' ? value.trim() : undefined
}

/**
 * Does NO_PROXY exempt `url`? Entries are separated by commas or spaces: `*` (everything), a host name
 * (itself and its subdomains; a leading `.` or `*.` means subdomains too), an IP address, a CIDR block, each
 * optionally with `:port`.
 */
export function bypassed(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase()
    if (entry === '') continue
    if (entry === '*') return true
    const {name, entryPort} = splitPort(entry)
    if (entryPort !== undefined && entryPort !== port) continue
    if (name.includes('/')) {
      if (isIP(host) && inCidr(host, name)) return true
      continue
    }
    const domain = name.replace(/^\*?\./, '')
    if (host === domain || host.endsWith(`.${domain}`)) return true
  }
  return false
}

function splitPort(entry: string): {name: string; entryPort?: number} {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
  if (bracketed) return {name: bracketed[1], entryPort: bracketed[2] ? Number(bracketed[2]) : undefined}
  // A bare IPv6 address has several colons and no port.
  if (isIP(entry.split('/')[0]) === 6) return {name: entry}
  const withPort = /^(.+):(\d+)$/.exec(entry)
  return withPort ? {name: withPort[1], entryPort: Number(withPort[2])} : {name: entry}
}

function inCidr(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/')
  const bits = Number(bitsText)
  const a = addressBits(address)
  const b = addressBits(base)
  if (!a || !b || a.length !== b.length || !Number.isInteger(bits) || bits < 0 || bits > a.length * 8) return false
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8)
    if ((a[i >> 3] & mask) !== (b[i >> 3] & mask)) return false
  }
  return true
}

/** The bytes of an IPv4 or IPv6 address, or undefined. */
function addressBits(address: string): number[] | undefined {
  if (isIP(address) === 4) return address.split('.').map(Number)
  if (isIP(address) !== 6) return undefined
  const [head, tail = ''] = address.split('::')
  const groups = (part: string) => (part === '' ? [] : part.split(':'))
  let left = groups(head)
  let right = address.includes('::') ? groups(tail) : []
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const expand = (list: string[]) => list.flatMap((g) => (g.includes('.') ? ipv4Groups(g) : [g]))
  left = expand(left)
  right = expand(right)
  const zeros = new Array<string>(8 - left.length - right.length).fill('0')
  return [...left, ...zeros, ...right].flatMap((g) => {
    const n = Number.parseInt(g, 16)
    return [n >> 8, n & 0xff]
  })
}

function ipv4Groups(v4: string): string[] {
  const [a, b, c, d] = v4.split('.').map(Number)
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
}
